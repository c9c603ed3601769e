"""The files namespace: streamed multipart uploads (replayable on 429), get/list/delete/download."""

from __future__ import annotations

import asyncio
import io
import json
import pathlib
import pickle
import threading
from typing import Any

import httpx
import pytest

from replicate.client import Client
from replicate.exceptions import RateLimitError, ReplicateError, ReplicateReadTimeout
from replicate.file import ASYNC_UPLOAD_CHUNK, UPLOAD_CHUNK, File, Files
from replicate.helpers import FileOutput
from replicate.pagination import PageList

MODES = ["sync", "async"]
TOKEN = "r8_file_secret"
API = "https://api.replicate.com"
FILE_JSON = {
    "id": "abc123",
    "name": "in.txt",
    "content_type": "text/plain",
    "size": 5,
    "etag": "e",
    "checksums": {"sha256": "x", "md5": "y"},
    "metadata": {"k": "v"},
    "created_at": "2024-01-01T00:00:00Z",
    "expires_at": "2024-01-02T00:00:00Z",
    "urls": {"get": f"{API}/v1/files/abc123"},
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "REPLICATE_POLL_INTERVAL"):
        monkeypatch.delenv(name, raising=False)


class StreamingServer(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Iterates each request body itself (like a real server), chunk by chunk.

    ``answers`` is a list of statuses (or exceptions) for successive requests; the last repeats.
    """

    def __init__(self, answers: list[Any] | None = None, body: Any = None) -> None:
        self.answers = answers or [201]
        self.body = FILE_JSON if body is None else body
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.chunk_sizes: list[list[int]] = []

    def _answer(self, request: httpx.Request) -> httpx.Response:
        index = min(len(self.requests) - 1, len(self.answers) - 1)
        answer = self.answers[index]
        if isinstance(answer, Exception):
            raise answer
        headers = {"retry-after": "0"} if answer == 429 else {}
        return httpx.Response(answer, json=self.body, headers=headers)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        parts = list(request.stream)  # type: ignore[union-attr]
        self.bodies.append(b"".join(parts))
        self.chunk_sizes.append([len(p) for p in parts])
        return self._answer(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        parts = [p async for p in request.stream]  # type: ignore[union-attr]
        self.bodies.append(b"".join(parts))
        self.chunk_sizes.append([len(p) for p in parts])
        return self._answer(request)


def make_client(server: Any, **kwargs: Any) -> Client:
    return Client(TOKEN, transport=server, **kwargs)


def create(client: Client, mode: str, file: Any, **params: Any) -> File:
    if mode == "sync":
        return client.files.create(file, **params)
    return asyncio.run(client.files.async_create(file, **params))


def parse_multipart(request: httpx.Request, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    ctype = request.headers["content-type"]
    assert ctype.startswith("multipart/form-data; boundary=")
    boundary = ctype.split("boundary=", 1)[1].encode()
    assert body.endswith(b"--" + boundary + b"--\r\n")
    parts = []
    for raw in body.split(b"--" + boundary)[1:-1]:
        assert raw.startswith(b"\r\n") and raw.endswith(b"\r\n")
        head, _, content = raw[2:-2].partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(": ")
            headers[key.lower()] = value
        parts.append((headers, content))
    return parts


# --------------------------------------------------------------------------------------------
# create
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_create_from_path_streams_multipart(mode: str, tmp_path: pathlib.Path) -> None:
    chunk = UPLOAD_CHUNK if mode == "sync" else ASYNC_UPLOAD_CHUNK
    data = bytes(range(256)) * (chunk // 256) * 3 + b"tail"
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    server = StreamingServer()
    file = create(make_client(server), mode, path, metadata={"k": "v"})
    assert isinstance(file, File) and file.id == "abc123"
    assert file.checksums == {"sha256": "x", "md5": "y"} and file.urls is not None
    assert file._client is not None
    request, body = server.requests[0], server.bodies[0]
    assert request.method == "POST" and str(request.url) == f"{API}/v1/files"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert int(request.headers["content-length"]) == len(body)
    (meta_headers, meta), (file_headers, content) = parse_multipart(request, body)
    assert meta_headers["content-disposition"] == 'form-data; name="metadata"'
    assert json.loads(meta) == {"k": "v"}
    assert file_headers["content-disposition"] == 'form-data; name="content"; filename="photo.png"'
    assert file_headers["content-type"] == "image/png"
    assert content == data
    # Streamed: the file part arrives in bounded chunks, never as one buffer.
    assert max(server.chunk_sizes[0]) <= chunk
    assert len(server.chunk_sizes[0]) >= 5
    # Upload read timeout is at least 120 s.
    assert request.extensions["timeout"]["read"] >= 120


@pytest.mark.parametrize("mode", MODES)
def test_create_params_and_sources(mode: str, tmp_path: pathlib.Path) -> None:
    server = StreamingServer()
    client = make_client(server)
    fh = io.BytesIO(b"0123456789")
    fh.read(4)  # seekable sources are rewound
    create(client, mode, fh, filename="custom.bin", content_type="application/x-custom")
    path = tmp_path / "a.txt"
    path.write_text("x")
    create(client, mode, str(path), filename="explicit.json")  # explicit filename wins
    create(client, mode, b"raw")
    create(client, mode, bytearray(b"arr"))
    create(client, mode, io.StringIO("héllo"))
    parsed = [parse_multipart(r, b) for r, b in zip(server.requests, server.bodies, strict=True)]
    assert all(len(p) == 1 for p in parsed)  # no metadata part unless metadata is non-empty
    heads = [p[0][0] for p in parsed]
    contents = [p[0][1] for p in parsed]
    assert 'filename="custom.bin"' in heads[0]["content-disposition"]
    assert heads[0]["content-type"] == "application/x-custom"
    assert contents[0] == b"0123456789"
    assert 'filename="explicit.json"' in heads[1]["content-disposition"]
    assert heads[1]["content-type"] == "application/json"
    assert 'filename="file"' in heads[2]["content-disposition"]
    assert heads[2]["content-type"] == "application/octet-stream"
    assert contents[2:4] == [b"raw", b"arr"]
    assert contents[4] == "héllo".encode()
    assert server.requests[4].headers.get("transfer-encoding") == "chunked"


def test_filename_is_escaped() -> None:
    server = StreamingServer()
    create(make_client(server), "sync", b"x", filename='a"b\r\nc.txt')
    head = parse_multipart(server.requests[0], server.bodies[0])[0][0]
    assert head["content-disposition"] == 'form-data; name="content"; filename="a%22b%0D%0Ac.txt"'


@pytest.mark.parametrize("mode", MODES)
def test_create_closes_opened_path(mode: str, tmp_path: pathlib.Path, monkeypatch: Any) -> None:
    import builtins

    opened: list[Any] = []
    real_open = builtins.open

    def spy(*args: Any, **kwargs: Any) -> Any:
        f = real_open(*args, **kwargs)
        opened.append(f)
        return f

    monkeypatch.setattr(builtins, "open", spy)
    path = tmp_path / "x.bin"
    path.write_bytes(b"x")
    server = StreamingServer(answers=[400])
    with pytest.raises(ReplicateError):
        create(make_client(server), mode, path)
    assert opened and all(f.closed for f in opened)


def test_create_rejects_bad_arguments() -> None:
    files = make_client(StreamingServer()).files
    with pytest.raises(ValueError, match="Unsupported file type"):
        files.create(123)
    with pytest.raises(TypeError, match="bogus"):
        files.create(b"x", bogus=1)
    with pytest.raises(TypeError, match="metadata"):
        files.create(b"x", metadata=[1])


@pytest.mark.parametrize("mode", MODES)
def test_429_then_success_resends_identical_body(mode: str, tmp_path: pathlib.Path) -> None:
    data = b"abc" * (UPLOAD_CHUNK // 2)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    server = StreamingServer(answers=[429, 201])
    file = create(make_client(server), mode, path, metadata={"a": 1})
    assert file.id == "abc123"
    assert len(server.requests) == 2
    assert server.bodies[0] == server.bodies[1]
    assert len(server.bodies[1]) == int(server.requests[1].headers["content-length"])
    assert parse_multipart(server.requests[1], server.bodies[1])[1][1] == data


@pytest.mark.parametrize("mode", MODES)
def test_non_seekable_source_is_not_retried(mode: str) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = io.BytesIO(b"streamed once")

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def read(self, n: int = -1) -> bytes:
            return self.data.read(n)

    server = StreamingServer(answers=[429, 201])
    with pytest.raises(RateLimitError):
        create(make_client(server), mode, Pipe())
    assert len(server.requests) == 1
    assert server.requests[0].headers.get("transfer-encoding") == "chunked"


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout_on_upload_is_not_retried(mode: str) -> None:
    server = StreamingServer(answers=[httpx.ReadTimeout("slow"), 201])
    with pytest.raises(ReplicateReadTimeout):
        create(make_client(server), mode, b"data")
    assert len(server.requests) == 1


def test_413_raises_replicate_error() -> None:
    server = StreamingServer(answers=[413], body={"detail": "too large"})
    with pytest.raises(ReplicateError) as info:
        create(make_client(server), "sync", b"x")
    assert info.value.status == 413 and "too large" in str(info.value)


def test_async_upload_reads_in_a_worker_thread() -> None:
    threads: set[int] = set()

    class Spy(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            threads.add(threading.get_ident())
            return super().read(n)

    server = StreamingServer()
    asyncio.run(make_client(server).files.async_create(Spy(b"x" * 10)))
    assert threads and threading.get_ident() not in threads


def test_upload_stream_rewind_protocol() -> None:
    from replicate._retry import ReplayableStream, is_replayable
    from replicate.file import _UploadStream

    stream = _UploadStream(io.BytesIO(b"hello"), filename="f", content_type="t", fields=[])
    assert isinstance(stream, ReplayableStream) and is_replayable(stream)
    first = b"".join(stream)
    stream.rewind()
    assert b"".join(stream) == first
    assert stream.content_length == len(first)


# --------------------------------------------------------------------------------------------
# get / list / delete / download
# --------------------------------------------------------------------------------------------


class Api:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "GET" and path == "/v1/files/abc123":
            return httpx.Response(200, json=FILE_JSON)
        if request.method == "DELETE" and path == "/v1/files/abc123":
            return httpx.Response(204)
        if request.method == "GET" and path == "/v1/files":
            nxt = None if request.url.params.get("cursor") else f"{API}/v1/files?cursor=2"
            return httpx.Response(200, json={"results": [FILE_JSON], "next": nxt, "previous": None})
        if path == "/v1/files/abc123/download":
            return httpx.Response(200, content=b"downloaded")
        return httpx.Response(404, json={"detail": "not found"})


def call(mode: str, fn: Any, afn: Any, *args: Any, **kwargs: Any) -> Any:
    if mode == "sync":
        return fn(*args, **kwargs)
    return asyncio.run(afn(*args, **kwargs))


@pytest.mark.parametrize("mode", MODES)
def test_get_list_delete(mode: str) -> None:
    api = Api()
    files: Files = Client(TOKEN, transport=httpx.MockTransport(api)).files
    got = call(mode, files.get, files.async_get, "abc123")
    assert got.id == "abc123" and got.name == "in.txt" and got.etag == "e"
    page = call(mode, files.list, files.async_list)
    # A real list, as in 1.0.x, that also carries the cursors.
    assert isinstance(page, list) and type(page) is PageList
    assert len(page) == 1 and page[0].id == "abc123"
    assert page + [] == [page[0]] and page.results is page  # noqa: RUF005
    assert page.next == f"{API}/v1/files?cursor=2" and page.previous is None
    assert pickle.loads(pickle.dumps(page)).next == page.next
    page2 = call(mode, files.list, files.async_list, page.next)
    assert page2.next is None
    assert call(mode, files.delete, files.async_delete, "abc123") is True
    assert [f"{r.method} {r.url}" for r in api.requests] == [
        f"GET {API}/v1/files/abc123",
        f"GET {API}/v1/files",
        f"GET {API}/v1/files?cursor=2",
        f"DELETE {API}/v1/files/abc123",
    ]
    with pytest.raises(ValueError, match="cursor cannot be None"):
        files.list(None)
    with pytest.raises(ValueError):
        files.list("https://evil.example.com/v1/files?cursor=2")
    with pytest.raises(ReplicateError) as info:
        files.get("missing")
    assert info.value.status == 404


def test_ids_are_quoted_and_extras_forwarded() -> None:
    api = Api()
    files = Client(TOKEN, transport=httpx.MockTransport(api)).files
    with pytest.raises(ReplicateError):
        files.get("a/b", extra_headers={"X-Test": "1"}, extra_query={"q": "v"})
    request = api.requests[0]
    assert request.url.raw_path == b"/v1/files/a%2Fb?q=v"
    assert request.headers["x-test"] == "1"


@pytest.mark.parametrize("mode", MODES)
def test_download_is_lazy_and_authorized_for_api_origin(mode: str) -> None:
    api = Api()
    client = Client(TOKEN, transport=httpx.MockTransport(api))
    fo = call(
        mode,
        client.files.download,
        client.files.async_download,
        "abc123",
        owner="me",
        expiry=1700000000,
        signature="sig+/=",
    )
    assert isinstance(fo, FileOutput)
    assert api.requests == []
    assert (
        fo.url
        == f"{API}/v1/files/abc123/download?owner=me&expiry=1700000000&signature=sig%2B%2F%3D"
    )
    data = fo.read() if mode == "sync" else asyncio.run(fo.aread())
    assert data == b"downloaded"
    assert api.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert api.requests[0].url.params["signature"] == "sig+/="


def test_body_parses_with_a_standard_multipart_parser() -> None:
    pytest.importorskip("multipart")
    formparsers = pytest.importorskip("starlette.formparsers")
    from starlette.datastructures import Headers

    server = StreamingServer()
    data = bytes(range(256)) * 100
    create(
        make_client(server),
        "sync",
        data,
        filename='naïve "quoted".bin',
        content_type="image/webp",
        metadata={"k": ["v", 1]},
    )
    request, body = server.requests[0], server.bodies[0]

    async def parse() -> Any:
        async def stream() -> Any:
            yield body

        parser = formparsers.MultiPartParser(Headers(dict(request.headers)), stream())
        return await parser.parse()

    async def check() -> None:
        form = await parse()
        assert json.loads(form["metadata"]) == {"k": ["v", 1]}
        upload = form["content"]
        assert upload.filename == "naïve %22quoted%22.bin"
        assert upload.content_type == "image/webp"
        assert await upload.read() == data

    asyncio.run(check())
