"""FileOutput, data URLs, encode_json / async_encode_json, transform_output, base64_encode_file."""

from __future__ import annotations

import asyncio
import io
import logging
import pathlib
import pickle
import sys
import types
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from replicate.client import Client
from replicate.exceptions import (
    APIConnectionError,
    DownloadError,
    ReplicateError,
    ReplicateReadTimeout,
)
from replicate.helpers import (
    FileOutput,
    async_encode_json,
    base64_encode_file,
    encode_json,
    transform_output,
)

MODES = ["sync", "async"]
TOKEN = "r8_helpers_secret"
API = "https://api.replicate.com"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "REPLICATE_POLL_INTERVAL"):
        monkeypatch.delenv(name, raising=False)


class Server:
    """A MockTransport handler: routes by URL, records every request."""

    def __init__(self, routes: dict[str, Callable[[httpx.Request], httpx.Response]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = str(request.url.copy_with(query=None))
        handler = self.routes.get(key)
        if handler is None:
            return httpx.Response(404, text=f"no route {key}")
        return handler(request)


def make_client(server: Server, **kwargs: Any) -> Client:
    return Client(TOKEN, transport=httpx.MockTransport(server), **kwargs)


def read(fo: FileOutput, mode: str) -> bytes:
    if mode == "sync":
        return fo.read()
    return asyncio.run(fo.aread())


def chunks(fo: FileOutput, mode: str) -> list[bytes]:
    if mode == "sync":
        return list(fo)

    async def go() -> list[bytes]:
        return [chunk async for chunk in fo]

    return asyncio.run(go())


def save(fo: FileOutput, mode: str, path: pathlib.Path) -> pathlib.Path:
    if mode == "sync":
        return fo.save(path)
    return asyncio.run(fo.asave(path))


# --------------------------------------------------------------------------------------------
# FileOutput downloads
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["read", "iter", "save"])
def test_api_origin_download_sends_token(mode: str, how: str, tmp_path: pathlib.Path) -> None:
    server = Server({f"{API}/v1/files/abc": lambda r: httpx.Response(200, content=b"payload")})
    fo = FileOutput(f"{API}/v1/files/abc", make_client(server))
    if how == "read":
        assert read(fo, mode) == b"payload"
    elif how == "iter":
        assert b"".join(chunks(fo, mode)) == b"payload"
    else:
        out = save(fo, mode, tmp_path / "x.bin")
        assert out == tmp_path / "x.bin"
        assert out.read_bytes() == b"payload"
    assert server.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("mode", MODES)
def test_foreign_host_gets_no_authorization(mode: str) -> None:
    url = "https://replicate.delivery/pbxt/abc/out.png"
    server = Server({url: lambda r: httpx.Response(200, content=b"png")})
    fo = FileOutput(url, make_client(server))
    assert read(fo, mode) == b"png"
    assert b"".join(chunks(fo, mode)) == b"png"
    assert len(server.requests) == 2
    for request in server.requests:
        assert "authorization" not in request.headers
        assert TOKEN not in str(request.headers)


@pytest.mark.parametrize("mode", MODES)
def test_redirect_to_foreign_host_drops_authorization(mode: str) -> None:
    foreign = "https://evil.example.com/file.bin"
    server = Server(
        {
            f"{API}/v1/files/abc/download": lambda r: httpx.Response(
                302, headers={"location": foreign}
            ),
            foreign: lambda r: httpx.Response(200, content=b"moved"),
        }
    )
    fo = FileOutput(
        f"{API}/v1/files/abc/download?owner=o&expiry=1&signature=s", make_client(server)
    )
    assert read(fo, mode) == b"moved"
    first, second = server.requests
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert second.url.host == "evil.example.com"
    assert "authorization" not in second.headers


def test_download_uses_a_client_without_default_auth_headers() -> None:
    server = Server({"https://cdn.example.com/a": lambda r: httpx.Response(200, content=b"a")})
    client = make_client(server, headers={"X-Custom": "1"})
    FileOutput("https://cdn.example.com/a", client).read()
    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["read", "iter", "save"])
def test_http_error_raises_download_error(mode: str, how: str, tmp_path: pathlib.Path) -> None:
    url = "https://replicate.delivery/missing.png"
    server = Server({url: lambda r: httpx.Response(404, text="gone")})
    fo = FileOutput(url + "?signature=SECRET", make_client(server))
    target = tmp_path / "out.bin"
    with pytest.raises(DownloadError) as info:
        if how == "read":
            read(fo, mode)
        elif how == "iter":
            chunks(fo, mode)
        else:
            save(fo, mode, target)
    err = info.value
    assert isinstance(err, ReplicateError)
    assert isinstance(err, httpx.HTTPStatusError)
    assert err.status == 404 and err.status_code == 404
    assert err.response is not None and err.response.status_code == 404
    assert err.request is not None
    assert "SECRET" not in str(err) and "gone" in str(err)
    assert not target.exists()


@pytest.mark.parametrize("mode", MODES)
def test_transport_errors_are_wrapped(mode: str) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client = Client(TOKEN, transport=httpx.MockTransport(boom), retry=False)
    fo = FileOutput("https://replicate.delivery/x", client)
    with pytest.raises(ReplicateReadTimeout) as info:
        read(fo, mode)
    assert isinstance(info.value, httpx.ReadTimeout)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    with pytest.raises(APIConnectionError):
        chunks(fo, mode)


@pytest.mark.parametrize("mode", MODES)
def test_iteration_streams_in_chunks(mode: str) -> None:
    parts = [b"a" * 1000, b"b" * 1000, b"c" * 10]

    class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Any:
            yield from parts

        async def __aiter__(self) -> Any:
            for part in parts:
                yield part

    url = "https://replicate.delivery/big"
    server = Server({url: lambda r: httpx.Response(200, stream=Body())})
    got = chunks(FileOutput(url, make_client(server)), mode)
    assert got == parts  # chunk by chunk, not joined into one buffer


@pytest.mark.parametrize("mode", MODES)
def test_each_read_is_a_new_request(mode: str) -> None:
    url = "https://replicate.delivery/x"
    server = Server({url: lambda r: httpx.Response(200, content=b"x")})
    fo = FileOutput(url, make_client(server))
    read(fo, mode)
    read(fo, mode)
    assert len(server.requests) == 2


def test_file_output_is_an_httpx_stream_and_can_be_sent_as_content() -> None:
    url = "https://replicate.delivery/in"
    server = Server(
        {
            url: lambda r: httpx.Response(200, content=b"abc"),
            "https://upload.example.com/": lambda r: httpx.Response(200, content=r.read()),
        }
    )
    client = make_client(server)
    fo = FileOutput(url, client)
    assert isinstance(fo, httpx.SyncByteStream)
    assert isinstance(fo, httpx.AsyncByteStream)
    http = httpx.Client(transport=httpx.MockTransport(server))
    response = http.post("https://upload.example.com/", content=fo)
    assert response.content == b"abc"


def test_default_client_is_used_without_a_client(monkeypatch: pytest.MonkeyPatch) -> None:
    import replicate

    url = "https://replicate.delivery/x"
    server = Server({url: lambda r: httpx.Response(200, content=b"d")})
    monkeypatch.setattr(replicate, "default_client", make_client(server))
    assert FileOutput(url).read() == b"d"


# --------------------------------------------------------------------------------------------
# data: URLs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("data:text/plain;base64,SGVsbG8sIFdvcmxkIQ==", b"Hello, World!"),
        ("data:;base64,SGVsbG8", b"Hello"),  # missing padding tolerated
        ("data:image/png;BASE64,AAEC", b"\x00\x01\x02"),
        ("data:,Hello%2C%20World%21", b"Hello, World!"),
        ("data:text/plain;charset=utf-8,caf%C3%A9", "café".encode()),
        ("data:,", b""),
        ("data:application/octet-stream;base64,-_8=", b"\xfb\xff"),  # URL-safe alphabet
        ("data:;base64,SGVs%0AbG8=", b"Hello"),  # percent-encoded newline inside base64
    ],
)
def test_data_urls_decode_locally(mode: str, url: str, expected: bytes) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise AssertionError("data: URLs must not make requests")

    fo = FileOutput(url, Client(TOKEN, transport=httpx.MockTransport(fail)))
    assert read(fo, mode) == expected
    assert b"".join(chunks(fo, mode)) == expected


def test_data_url_save_and_chunking(tmp_path: pathlib.Path) -> None:
    payload = bytes(range(256)) * 1000
    import base64

    url = "data:application/octet-stream;base64," + base64.b64encode(payload).decode()
    fo = FileOutput(url)
    assert fo.save(tmp_path / "d.bin", chunk_size=1000).read_bytes() == payload
    assert asyncio.run(fo.asave(tmp_path / "e.bin")).read_bytes() == payload


def test_invalid_base64_data_url() -> None:
    with pytest.raises(ValueError, match="base64"):
        FileOutput("data:;base64,@@@=x").read()


def test_str_repr_eq_hash_pickle() -> None:
    a = FileOutput("https://replicate.delivery/a.png")
    assert str(a) == "https://replicate.delivery/a.png"
    assert repr(a) == "FileOutput('https://replicate.delivery/a.png')"
    assert a == FileOutput("https://replicate.delivery/a.png")
    assert a != FileOutput("https://replicate.delivery/b.png")
    assert len({a, FileOutput("https://replicate.delivery/a.png")}) == 1
    long = FileOutput("data:text/plain;base64," + "A" * 1000)
    assert len(repr(long)) < 80 and "..." in repr(long)
    clone = pickle.loads(pickle.dumps(a))
    assert clone == a and clone._client is None
    with pytest.raises(TypeError):
        FileOutput(123)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# transform_output
# --------------------------------------------------------------------------------------------


def test_transform_output_rules() -> None:
    client = Client(TOKEN)
    out = transform_output(
        {
            "image": "https://replicate.delivery/a.png",
            "list": ["https://x.example/1", ("https://x.example/2",)],
            "http": "http://insecure.example/a",
            "text": "see https://x.example/a for details",
            "space": "https://x.example/a b",
            "nohost": "https://",
            "data": "data:text/plain;base64,SGk=",
            "notdata": "data: 1, 2, 3",
            "n": 1,
            "none": None,
        },
        client,
    )
    assert isinstance(out["image"], FileOutput) and out["image"]._client is client
    assert [type(x).__name__ for x in out["list"]] == ["FileOutput", "list"]
    assert isinstance(out["list"][1][0], FileOutput)
    assert out["http"] == "http://insecure.example/a"
    assert out["text"] == "see https://x.example/a for details"
    assert out["space"] == "https://x.example/a b"
    assert out["nohost"] == "https://"
    assert isinstance(out["data"], FileOutput)
    assert out["notdata"] == "data: 1, 2, 3"
    assert out["n"] == 1 and out["none"] is None
    assert transform_output("plain", client) == "plain"


# --------------------------------------------------------------------------------------------
# base64_encode_file
# --------------------------------------------------------------------------------------------


def test_base64_test_vectors() -> None:
    named = io.BytesIO(b"Hello, World!")
    named.name = "test.txt"  # type: ignore[attr-defined]
    assert base64_encode_file(named) == "data:text/plain;base64,SGVsbG8sIFdvcmxkIQ=="
    assert (
        base64_encode_file(io.BytesIO(b"hello world"))
        == "data:application/octet-stream;base64,aGVsbG8gd29ybGQ="
    )


def test_base64_rewinds_reads_text_and_large_chunks(caplog: pytest.LogCaptureFixture) -> None:
    import base64

    f = io.BytesIO(b"hello world")
    f.read(5)
    assert base64_encode_file(f).endswith("aGVsbG8gd29ybGQ=")
    text = io.StringIO("héllo")
    assert base64_encode_file(text) == "data:application/octet-stream;base64," + (
        base64.b64encode("héllo".encode()).decode()
    )
    big = bytes(range(256)) * 5000  # > 256 KiB and not a multiple of the read size
    with caplog.at_level(logging.WARNING, logger="replicate"):
        encoded = base64_encode_file(io.BytesIO(big))
    assert base64.b64decode(encoded.split(",", 1)[1]) == big
    assert any("256 KiB" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------------
# encode_json
# --------------------------------------------------------------------------------------------


class Uploads:
    """A fake POST /v1/files: records the uploaded parts, answers with a URL per upload."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/files"
        body = request.read()
        self.bodies.append(body)
        n = len(self.bodies)
        return httpx.Response(201, json={"id": f"f{n}", "urls": {"get": f"{API}/v1/files/f{n}"}})


def encode(mode: str, obj: Any, client: Client, strategy: Any = None) -> Any:
    if mode == "sync":
        return encode_json(obj, client, strategy)
    return asyncio.run(async_encode_json(obj, client, strategy))


@pytest.mark.parametrize("mode", MODES)
def test_encode_json_uploads_each_object_once(mode: str, tmp_path: pathlib.Path) -> None:
    uploads = Uploads()
    client = Client(TOKEN, transport=httpx.MockTransport(uploads))
    path = tmp_path / "in.txt"
    path.write_bytes(b"from disk")
    fh = io.BytesIO(b"same object")
    raw = b"raw bytes"

    def gen() -> Any:
        yield 1
        yield fh

    result = encode(
        mode,
        {
            "a": fh,
            "b": [fh, (fh,)],
            "p": path,
            "p2": pathlib.Path(str(path)),
            "bytes": raw,
            "mv": memoryview(b"view"),
            "g": gen(),
            "s": {3},
            "str": str(path),
            "fo": FileOutput("https://replicate.delivery/o.png"),
            "n": None,
        },
        client,
    )
    assert result["a"] == f"{API}/v1/files/f1"
    assert result["b"] == [result["a"], [result["a"]]]
    assert result["g"] == [1, result["a"]]
    assert result["p"] == result["p2"]
    assert result["str"] == str(path)  # strings are never paths
    assert result["fo"] == "https://replicate.delivery/o.png"
    assert result["s"] == [3]
    assert result["n"] is None
    assert len(uploads.bodies) == 4  # fh, path, bytes, memoryview
    joined = b"".join(uploads.bodies)
    assert b"same object" in joined and b"from disk" in joined and b"raw bytes" in joined
    assert b'filename="in.txt"' in joined
    assert b'filename="file"' in joined and b"application/octet-stream" in joined


@pytest.mark.parametrize("mode", MODES)
def test_encode_json_base64_strategy(mode: str, tmp_path: pathlib.Path) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no upload with base64")

    client = Client(TOKEN, transport=httpx.MockTransport(fail))
    named = io.BytesIO(b"Hello, World!")
    named.name = "test.txt"  # type: ignore[attr-defined]
    path = tmp_path / "x.txt"
    path.write_bytes(b"hello world")
    out = encode(mode, {"f": named, "p": path, "b": b"hello world"}, client, "base64")
    assert out["f"] == "data:text/plain;base64,SGVsbG8sIFdvcmxkIQ=="
    assert out["p"] == "data:text/plain;base64,aGVsbG8gd29ybGQ="
    assert out["b"] == "data:application/octet-stream;base64,aGVsbG8gd29ybGQ="


def test_encode_json_invalid_strategy() -> None:
    with pytest.raises(ValueError, match="file_encoding_strategy"):
        encode_json({}, Client(TOKEN), "bogus")  # type: ignore[arg-type]


def test_encode_json_numpy_when_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    np = pytest.importorskip("numpy")
    out = encode_json({"i": np.int64(3), "f": np.float32(0.5), "a": np.arange(3)}, Client(TOKEN))
    assert out == {"i": 3, "f": 0.5, "a": [0, 1, 2]}
    assert type(out["i"]) is int and type(out["f"]) is float


def test_encode_json_fake_numpy_module(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("numpy")

    class integer(int):
        pass

    class floating(float):
        pass

    class bool_:
        pass

    class ndarray:
        def tolist(self) -> list[int]:
            return [7, 8]

    fake.integer = integer  # type: ignore[attr-defined]
    fake.floating = floating  # type: ignore[attr-defined]
    fake.bool_ = bool_  # type: ignore[attr-defined]
    fake.ndarray = ndarray  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "numpy", fake)
    assert encode_json({"a": ndarray()}, Client(TOKEN)) == {"a": [7, 8]}


def test_encode_json_url_path_uses_its_url(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    fake = types.ModuleType("replicate.use")

    class URLPath(os.PathLike):  # type: ignore[type-arg]
        def __init__(self, url: str) -> None:
            self.__url__ = url

        def __fspath__(self) -> str:
            raise AssertionError("must not download")

    fake.URLPath = URLPath  # type: ignore[attr-defined]
    fake.get_path_url = lambda p: p.__url__  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "replicate.use", fake)
    assert encode_json({"x": URLPath("https://a.example/x")}, Client(TOKEN)) == {
        "x": "https://a.example/x"
    }


@pytest.mark.parametrize("mode", MODES)
def test_read_with_size_reads_like_a_file(mode: str) -> None:
    import shutil

    url = "https://replicate.delivery/x"
    server = Server({url: lambda r: httpx.Response(200, content=b"0123456789")})
    fo = FileOutput(url, make_client(server))
    if mode == "sync":
        parts = [fo.read(4), fo.read(4), fo.read(4), fo.read(4)]
        sink = io.BytesIO()
        shutil.copyfileobj(fo, sink)
        assert sink.getvalue() == b"0123456789"
    else:

        async def go() -> list[bytes]:
            return [await fo.aread(4) for _ in range(4)]

        parts = asyncio.run(go())
    assert parts == [b"0123", b"4567", b"89", b""]
    # A FileOutput can be used as a request body.
    echo = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=r.read()))
    )
    assert echo.post("https://echo.example/", content=fo).content == b"0123456789"


@pytest.mark.parametrize("mode", MODES)
def test_error_body_read_is_bounded(mode: str) -> None:
    produced: list[int] = []

    class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Any:
            for i in range(64):
                produced.append(i)
                yield b"e" * 65536

        async def __aiter__(self) -> Any:
            for i in range(64):
                produced.append(i)
                yield b"e" * 65536

    url = "https://replicate.delivery/huge-error"
    server = Server({url: lambda r: httpx.Response(500, stream=Body())})
    with pytest.raises(DownloadError) as info:
        read(FileOutput(url, make_client(server, retry=False)), mode)
    assert len(produced) < 4  # the 4 MiB error page was not read whole
    assert info.value.response.text.startswith("eee")  # a readable response for callers
    assert len(str(info.value)) < 3000


def test_http_urls_are_files_only_on_the_api_origin() -> None:
    """A local server serves outputs over plain HTTP from its own origin: those are files."""
    from replicate.helpers import transform_output

    local = Client("t", base_url="http://127.0.0.1:5080")
    out = transform_output(
        ["http://127.0.0.1:5080/delivery/x/out.png", "http://example.com/x.png"], local
    )
    assert isinstance(out[0], FileOutput)
    assert out[1] == "http://example.com/x.png"
    remote = Client("t")
    assert transform_output("http://127.0.0.1:5080/delivery/x/out.png", remote) == (
        "http://127.0.0.1:5080/delivery/x/out.png"
    )


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://replicate.delivery/x/out%20put.png?sig=1", "out_put.png"),
        ("https://example.com/a/../../etc/passwd", "passwd"),
        ("https://example.com/", "output"),
        ("data:image/png;base64,AAAA", "output.png"),
    ],
)
def test_file_name_from_url_is_a_safe_basename(url: str, name: str) -> None:
    from replicate.helpers import file_name_from_url

    assert file_name_from_url(url) == name
