"""No request breaks the server's state: 500s keep the connection, bad rows never break a
list, file names never break a download, limits are values, buffers are bounded."""

from __future__ import annotations

import io
import json
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import replicate
from replicate.exceptions import ReplicateError
from replicate.local.controls import REQUEST_LOG_ENTRIES, REQUEST_LOG_FIELD
from replicate.local.files import FileService, FileTooLarge, content_disposition
from replicate.local.server import LocalServer
from replicate.local.store import Store

from .wire import Wire, strict_json

pytestmark = pytest.mark.hardening

AUTH = {"Authorization": "Bearer hardening"}
HELLO = "/v1/models/replicate/hello-world/predictions"
JSON = {"Content-Type": "application/json", **AUTH}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True) as s:
        yield s


def _wire(server: LocalServer) -> Wire:
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    return Wire(host, int(port))


def _hello(wire: Wire, text: str = "x") -> None:
    reopened = wire.reopened
    r = wire.request(
        "POST", HELLO, {**JSON, "Prefer": "wait"}, json.dumps({"input": {"text": text}}).encode()
    )
    assert r.status == 201 and r.json()["output"] == f"hello {text}", r.body[:300]
    assert wire.reopened == reopened, "the server closed the connection"


# ---------------------------------------------------------------------------- 500s


@pytest.fixture
def broken_secret(server: LocalServer) -> Iterator[None]:
    """``GET /v1/webhooks/default/secret`` fails with an unexpected error while active."""
    core = server.core
    assert core is not None
    saved = core.webhooks.secret
    core.webhooks.secret = object()  # type: ignore[assignment]  # not JSON serialisable
    try:
        yield
    finally:
        core.webhooks.secret = saved


def test_an_unexpected_error_is_a_500_problem_and_the_connection_lives_on(
    server: LocalServer, broken_secret: None
) -> None:
    with _wire(server) as wire:
        r = wire.request("GET", "/v1/webhooks/default/secret", AUTH)
        assert r.status == 500
        assert r.content_type == "application/problem+json"
        assert r.json() == {
            "title": "Internal server error",
            "detail": "Internal server error",
            "status": 500,
        }
        assert len(r.headers["x-request-id"]) == 16
        assert r.headers.get("connection") != "close"
        for _ in range(3):  # the very same socket keeps serving
            assert wire.request("GET", "/v1/webhooks/default/secret", AUTH).status == 500
            _hello(wire)
        assert wire.reopened == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_client_survives_a_500_on_its_kept_alive_connection(
    server: LocalServer, broken_secret: None, mode: str
) -> None:
    """The reported failure through ``replicate.Client``: after a 500 the next call on the
    same pooled connection failed with ``ReadError``."""
    client = replicate.Client(api_token="t", base_url=server.base_url, retry=False)

    async def both() -> Any:
        with pytest.raises(ReplicateError):
            await client.webhooks.default.async_secret()
        return await client.predictions.async_create(
            model="replicate/hello-world", input={"text": "a"}, wait=True
        )

    if mode == "sync":
        with pytest.raises(ReplicateError):
            client.webhooks.default.secret()
        pred = client.predictions.create(
            model="replicate/hello-world", input={"text": "a"}, wait=True
        )
    else:
        import asyncio

        pred = asyncio.run(both())
    assert pred.status == "succeeded" and pred.output == "hello a"


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/predictions", b"[" * 5000 + b"]" * 5000),
        (HELLO, b'{"input": {"text": "x"}, "webhook": "http://["}'),
        (HELLO, b'{"input": {"text": "x"}, "webhook": "http://[::1"}'),
    ],
    ids=["nested-5000", "webhook-open-ipv6", "webhook-open-ipv6-2"],
)
def test_the_reported_500s_are_4xx_now_on_one_httpx_connection(
    server: LocalServer, path: str, body: bytes
) -> None:
    with httpx.Client(
        base_url=server.base_url, headers=JSON, limits=httpx.Limits(max_connections=1)
    ) as c:
        r = c.post(path, content=body)
        assert (
            400 <= r.status_code < 500 and r.headers["content-type"] == "application/problem+json"
        )
        r = c.post(HELLO, json={"input": {"text": "b"}}, headers={"Prefer": "wait"})
        assert r.status_code == 201 and r.json()["output"] == "hello b"


# ---------------------------------------------------------------------------- bad rows


def _damage(db: Path, pid: str, **columns: Any) -> None:
    conn = sqlite3.connect(db)
    try:
        sets = ", ".join(f"{k} = ?" for k in columns)
        conn.execute(f"UPDATE predictions SET {sets} WHERE id = ?", [*columns.values(), pid])
        conn.commit()
    finally:
        conn.close()


def test_rows_that_cannot_be_rendered_never_break_a_list_even_after_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.sqlite3"
    with LocalServer(db=str(db)) as s, httpx.Client(base_url=s.base_url, headers=AUTH) as c:
        ids = [
            c.post(HELLO, json={"input": {"text": str(i)}}, headers={"Prefer": "wait"}).json()["id"]
            for i in range(5)
        ]
    # What older servers could store: a deadline no date can show (Cancel-After: 1e20),
    # NaN in the JSON columns, a creation time past year 9999, JSON columns that are not JSON.
    _damage(db, ids[0], deadline=1e20 + 1.7e9)
    _damage(db, ids[1], input='{"text": NaN}', output="Infinity")
    _damage(db, ids[2], created_at=1e15, started_at=-1e15)
    _damage(db, ids[3], input="{not json", metrics="[", output='"\\ud800"', extra="5")
    with LocalServer(db=str(db)) as s, httpx.Client(base_url=s.base_url, headers=AUTH) as c:
        r = c.get("/v1/predictions")
        assert r.status_code == 200, r.text
        listed = {p["id"]: p for p in strict_json(r.content)["results"]}
        assert set(ids) <= set(listed)
        assert listed[ids[4]]["output"] == "hello 4"
        assert listed[ids[1]]["input"] == {"text": None}
        assert listed[ids[3]]["error"] == "This prediction's stored data cannot be shown"
        for pid in ids:
            r = c.get(f"/v1/predictions/{pid}")
            assert r.status_code == 200, (pid, r.text)
            strict_json(r.content)
        r = c.post(HELLO, json={"input": {"text": "new"}}, headers={"Prefer": "wait"})
        assert r.status_code == 201 and r.json()["output"] == "hello new"


# ---------------------------------------------------------------------------- files


def _upload(c: httpx.Client, name: str, content: bytes = b"hello") -> dict[str, Any]:
    r = c.post("/v1/files", files={"content": ("x.bin", content)}, data={"filename": name})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_non_ascii_file_name_downloads_with_rfc_6266(server: LocalServer) -> None:
    with httpx.Client(base_url=server.base_url, headers=AUTH) as c:
        f = _upload(c, "файл.txt", b"privet")
        assert f["name"] == "файл.txt"
        r = c.get(server.sign_file_url(f["id"]))
        assert r.status_code == 200 and r.content == b"privet"
        disposition = r.headers["content-disposition"]
        assert disposition == (
            "attachment; filename=\"____.txt\"; filename*=UTF-8''" + urllib.parse.quote("файл.txt")
        )


@pytest.mark.parametrize(
    "name, fallback, exact",
    [
        ("a\r\nSet-Cookie: x=1.txt", "aSet-Cookie: x=1.txt", "aSet-Cookie%3A%20x%3D1.txt"),
        ("nul\x00byte.txt", "nulbyte.txt", "nulbyte.txt"),
        ('quo"te.txt', "quote.txt", "quote.txt"),
        ("../../etc/passwd", "passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf", "report.pdf"),
        ("\u202eevil.exe", "evil.exe", "evil.exe"),
        ("..", "file", "file"),
        ("café.png", "cafe.png", "caf%C3%A9.png"),
        ("100%.txt", "100_.txt", "100%25.txt"),
    ],
)
def test_hostile_file_names_never_break_the_download(
    server: LocalServer, name: str, fallback: str, exact: str
) -> None:
    with _wire(server) as wire:
        boundary = "hardening"
        form = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="x"\r\n\r\n'
                f'data\r\n--{boundary}\r\nContent-Disposition: form-data; name="filename"\r\n\r\n'
            ).encode()
            + name.encode()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        r = wire.request(
            "POST",
            "/v1/files",
            {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            form,
        )
        assert r.status == 201, r.body
        fid = r.json()["id"]
        target = server.sign_file_url(fid).removeprefix(server.base_url)
        r = wire.request("GET", target)
        assert r.status == 200 and r.body == b"data"
        assert r.headers["content-disposition"] == (
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
        )
        _hello(wire)


def test_content_disposition_is_always_a_valid_header_value() -> None:
    for name in ["", "\x00", "a\x7fb", "\ud800.txt", "x" * 300, "日本語.pdf", "a;b=c.txt"]:
        value = content_disposition(name)
        assert value.isascii() and value.isprintable(), value
        assert value.startswith('attachment; filename="')


def test_storing_an_output_never_lifts_the_upload_limit(tmp_path: Path) -> None:
    """``store_output`` used to raise ``max_upload_size`` while it wrote (and restore it
    after): an upload running meanwhile had no limit, and two overlapping outputs could
    leave it lifted for good. The limit is now a value passed to the writer."""
    store = Store(":memory:")
    files = FileService(store, tmp_path, b"k" * 32, lambda: 1.0, max_upload_size=10)
    uploads: list[Any] = []

    class Output(io.RawIOBase):
        """An output stream that, mid-write, runs an oversized upload and another output."""

        def __init__(self, nested: bool) -> None:
            self.chunks = [b"a" * 100, b""]
            self.nested = nested

        def read(self, n: int = -1) -> bytes:
            if self.nested:
                self.nested = False
                files.store_output("p2", Output(False), "inner.bin")
                try:
                    files.create_upload("me", io.BytesIO(b"x" * 50), "big", "x/y", {})
                    uploads.append("accepted")
                except FileTooLarge:
                    uploads.append("refused")
            return self.chunks.pop(0)

    files.store_output("p1", Output(True), "outer.bin")
    assert uploads == ["refused"]
    assert files.max_upload_size == 10
    with pytest.raises(FileTooLarge):
        files.create_upload("me", io.BytesIO(b"x" * 50), "big", "x/y", {})


# ---------------------------------------------------------------------------- memory bounds


def test_the_request_log_is_kept_only_with_test_controls() -> None:
    with LocalServer() as s, httpx.Client(base_url=s.base_url, headers=AUTH) as c:
        for _ in range(20):
            c.get("/v1/account", params={"q": "x" * 10_000})
        assert s.requests() == []


def test_the_request_log_is_a_bounded_ring_of_bounded_entries(server: LocalServer) -> None:
    server.clear_requests()
    with httpx.Client(base_url=server.base_url, headers=AUTH) as c:
        c.get("/v1/models/" + "p" * 6000, params={"q": "q" * 10_000})
        log = server.requests()
        assert len(log[-1]["path"]) <= REQUEST_LOG_FIELD
        assert len(log[-1]["query"]) <= REQUEST_LOG_FIELD
        assert log[-1]["path"].endswith("...") and log[-1]["status"] == 404
        for i in range(REQUEST_LOG_ENTRIES + 50):
            c.get("/v1/account", headers={"Prefer": "x" * 5000, "Idempotency-Key": str(i)})
    log = server.requests()
    assert len(log) == REQUEST_LOG_ENTRIES
    assert log[-1]["headers"]["idempotency-key"] == str(REQUEST_LOG_ENTRIES + 49)
    assert all(len(v) <= REQUEST_LOG_FIELD for e in log for v in e["headers"].values())
    server.clear_requests()


def test_faults_and_scripted_outcomes_are_bounded(server: LocalServer) -> None:
    from replicate.local.controls import MAX_FAULTS, MAX_SCRIPTED

    try:
        for _ in range(MAX_FAULTS):
            server.add_fault(path="/nowhere", status=500)
        with pytest.raises(ValueError, match="too many faults"):
            server.add_fault(path="/nowhere", status=500)
        with pytest.raises(ValueError, match="at most"):
            server.script("replicate/hello-world", *([{"output": "x"}] * (MAX_SCRIPTED + 1)))
    finally:
        server.reset()


@pytest.mark.parametrize(
    "field, value",
    [
        ("metadata", b'{"a":' * 3000 + b"1" + b"}" * 3000),  # was a 500 (RecursionError)
        ("metadata", b'{"a": NaN}'),
        ("metadata", b'{"a": "\\ud800"}'),
    ],
    ids=["metadata-nested-3000", "metadata-NaN", "metadata-surrogate"],
)
def test_upload_form_fields_pass_the_gate(server: LocalServer, field: str, value: bytes) -> None:
    boundary = "hardening"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="a"\r\n\r\n'
            f'x\r\n--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n'
        ).encode()
        + value
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with _wire(server) as wire:
        headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        r = wire.request("POST", "/v1/files", headers, form)
        assert r.status == 422 and r.content_type == "application/problem+json", r.body
        assert f"- {field}:" in r.json()["detail"]
        _hello(wire)


def test_an_upload_type_with_control_characters_is_stored_without_them(server: LocalServer) -> None:
    boundary = "hardening"
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="a"\r\n\r\n'
        f'x\r\n--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\n'
        f"text/\r\nplain\x00\r\n--{boundary}--\r\n"
    ).encode()
    with _wire(server) as wire:
        headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        r = wire.request("POST", "/v1/files", headers, form)
        assert r.status == 201, r.body
        assert r.json()["content_type"] == "text/plain"
        _hello(wire)
