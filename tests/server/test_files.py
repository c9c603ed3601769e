"""Files API: upload, checksums, expiry, list/get/delete, 413, signed downloads, files as inputs/outputs."""

from __future__ import annotations

import hashlib
import struct
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from replicate.local.server import LocalServer

from .conftest import AUTH

FILE_KEYS = {
    "id",
    "name",
    "content_type",
    "size",
    "etag",
    "checksums",
    "metadata",
    "created_at",
    "expires_at",
    "urls",
}


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def upload(
    c: httpx.Client, content: bytes, name: str = "hello.txt", ctype: str = "text/plain", **data: str
) -> httpx.Response:
    return c.post("/v1/files", files={"content": (name, content, ctype)}, data=data)


def test_upload_get_list_delete(fresh: LocalServer) -> None:
    with httpx.Client(base_url=fresh.base_url, headers=AUTH) as c:
        content = b"hello files\n"
        r = upload(c, content, metadata='{"a": 1}')
        assert r.status_code == 201
        assert r.headers["content-type"] == "application/json; charset=UTF-8"
        f = r.json()
        assert set(f) == FILE_KEYS
        assert (
            f["name"] == "hello.txt"
            and f["content_type"] == "text/plain"
            and f["size"] == len(content)
        )
        assert f["checksums"] == {
            "sha256": hashlib.sha256(content).hexdigest(),
            "md5": hashlib.md5(content).hexdigest(),
        }
        assert f["etag"] == hashlib.md5(content).hexdigest()
        assert f["metadata"] == {"a": 1}
        assert _dt(f["expires_at"]) - _dt(f["created_at"]) == timedelta(hours=24)
        assert f["urls"] == {"get": f"{fresh.base_url}/v1/files/{f['id']}"}
        assert c.get(f"/v1/files/{f['id']}").json() == f
        f2 = upload(
            c,
            b"other",
            name="x.bin",
            ctype="application/octet-stream",
            filename="renamed.bin",
            type="image/png",
        ).json()
        assert f2["name"] == "renamed.bin" and f2["content_type"] == "image/png"
        page = c.get("/v1/files").json()
        assert [x["id"] for x in page["results"]] == [f2["id"], f["id"]]
        assert page["next"] is None and page["previous"] is None
        d = c.delete(f"/v1/files/{f['id']}")
        assert d.status_code == 204
        g = c.get(f"/v1/files/{f['id']}")
        assert g.status_code == 404 and g.json() == {"detail": "File not found", "status": 404}
        assert c.delete(f"/v1/files/{f['id']}").status_code == 404
        assert [x["id"] for x in c.get("/v1/files").json()["results"]] == [f2["id"]]
        assert upload(c, b"x", metadata="not json").status_code == 422


def test_upload_too_large_gives_413() -> None:
    with (
        LocalServer(max_upload_size=1024) as s,
        httpx.Client(base_url=s.base_url, headers=AUTH) as c,
    ):
        ok = upload(c, b"x" * 1024)
        assert ok.status_code == 201
        r = upload(c, b"x" * 1025)
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json() == {
            "title": "Content Too Large",
            "detail": "Files must be less than 100MB in size",
            "status": 413,
        }
        big = upload(c, b"x" * (3 * 1024 * 1024))
        assert big.status_code == 413
        assert [f["size"] for f in c.get("/v1/files").json()["results"]] == [1024]


def test_signed_download_and_expiry(fresh: LocalServer) -> None:
    with httpx.Client(base_url=fresh.base_url, headers=AUTH) as c:
        f = upload(c, b"signed bytes", name="s.txt").json()
        url = fresh.sign_file_url(f["id"], ttl=3600)
        r = httpx.get(url)
        assert r.status_code == 200 and r.content == b"signed bytes"
        assert r.headers["content-type"] == "application/octet-stream"  # as the spec documents
        assert "s.txt" in r.headers["content-disposition"]
        assert r.headers["etag"] == f'"{f["etag"]}"'
        ctl = c.get(f"/_local/files/{f['id']}/signed-url").json()["url"]
        assert httpx.get(ctl).content == b"signed bytes"
        bad = httpx.get(url.replace("signature=", "signature=x"))
        assert bad.status_code == 404 and bad.json()["detail"] == "File not found"
        fresh.advance_clock("2h")
        assert httpx.get(url).status_code == 404  # the link expired
        fresh.advance_clock("23h")
        assert c.get(f"/v1/files/{f['id']}").status_code == 404  # the file expired
        assert httpx.get(fresh.sign_file_url(f["id"])).status_code == 404


def test_file_as_input_to_callable(server: LocalServer, http: httpx.Client) -> None:
    def read_file(document: Path) -> str:
        return f"{document.name}:{document.read_text()}"

    server.register("test/read-file", read_file)
    f = upload(http, b"file contents", name="doc.txt").json()
    r = http.post(
        "/v1/models/test/read-file/predictions",
        json={"input": {"document": f["urls"]["get"]}},
        headers={"Prefer": "wait"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["output"] == "doc.txt:file contents"
    assert r.json()["input"] == {"document": f["urls"]["get"]}
    d = http.post(
        "/v1/models/test/read-file/predictions",
        json={"input": {"document": "data:text/plain;base64,aGVsbG8="}},
        headers={"Prefer": "wait"},
    )
    assert d.json()["output"] == "input.txt:hello"

    def echo_file(document: Path) -> Path:
        return document

    server.register("test/echo-file", echo_file)
    e = http.post(
        "/v1/models/test/echo-file/predictions",
        json={"input": {"document": f["urls"]["get"]}},
        headers={"Prefer": "wait"},
    ).json()
    assert e["status"] == "succeeded"
    assert httpx.get(e["output"]).content == b"file contents"


def _png_ok(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    size = (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(tag + body) & 0xFFFFFFFF == crc
        if tag == b"IHDR":
            size = struct.unpack(">II", body[:8])
        pos += 12 + length
    return size


def test_make_file_png_output(http: httpx.Client) -> None:
    p = http.post(
        "/v1/models/local-demo/make-file/predictions",
        json={"input": {"text": "hi", "size": 16}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["status"] == "succeeded"
    url = p["output"]
    assert url.startswith(str(http.base_url).rstrip("/") + "/delivery/") and url.endswith(
        "/output.png"
    )
    r = httpx.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.headers["etag"] == f'"{hashlib.md5(r.content).hexdigest()}"'
    assert _png_ok(r.content) == (16, 16)
    part = httpx.get(url, headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == b"\x89PNG\r\n\x1a\n"
    txt = http.post(
        "/v1/models/local-demo/make-file/predictions",
        json={"input": {"text": "plain", "format": "txt"}},
        headers={"Prefer": "wait"},
    ).json()
    assert httpx.get(txt["output"]).text == "plain"
    assert httpx.get(url.replace("/delivery/", "/delivery/x")).status_code == 404
    # output files are not listed as uploads
    assert all(f["name"] != "output.png" for f in http.get("/v1/files").json()["results"])


def test_delivery_404_after_data_removal(fresh: LocalServer) -> None:
    with httpx.Client(base_url=fresh.base_url, headers=AUTH) as c:
        p = c.post(
            "/v1/models/local-demo/make-file/predictions",
            json={"input": {"text": "x"}},
            headers={"Prefer": "wait"},
        ).json()
        assert httpx.get(p["output"]).status_code == 200
        fresh.advance_clock("61m")
        q = c.get(f"/v1/predictions/{p['id']}").json()
        assert q["data_removed"] is True and q["output"] is None
        assert httpx.get(p["output"]).status_code == 404
        ex = c.get("/v1/models/replicate/hello-world/examples").json()["results"][0]
        assert ex["data_removed"] is False and ex["output"] == "hello world"


def test_sync_file_outputs_data_uri() -> None:
    import base64

    with (
        LocalServer(sync_file_outputs="data-uri") as s,
        httpx.Client(base_url=s.base_url, headers=AUTH) as c,
    ):
        body = {"input": {"text": "inline", "format": "txt"}}
        r = c.post(
            "/v1/models/local-demo/make-file/predictions", json=body, headers={"Prefer": "wait"}
        )
        out = r.json()["output"]
        assert out == "data:text/plain;base64," + base64.b64encode(b"inline").decode()
        got = c.get(f"/v1/predictions/{r.json()['id']}").json()["output"]
        assert got.startswith(s.base_url + "/delivery/")
