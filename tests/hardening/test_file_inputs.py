"""File inputs are URLs, never server paths; nothing fetched or called back may reach the
server's own /_local controls; remote inputs are streamed with a size cap and a timeout."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http import server as http_server
from pathlib import Path
from typing import Any

import httpx
import pytest

from replicate.local.fetch import OwnAddress, control_path, targets_controls
from replicate.local.server import LocalServer

AUTH = {"Authorization": "Bearer hardening"}


def read(f: Path) -> str:
    return f.read_text(errors="replace")[:200]


def read_many(files: list[Path]) -> list[str]:
    return [f.read_text() for f in files]


def size_of(f: Path) -> int:
    return f.stat().st_size


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True, input_fetch_timeout=2.0) as s:
        s.register("files/read", read)
        s.register("files/many", read_many)
        s.register("files/size", size_of)
        yield s


@pytest.fixture(scope="module")
def http(server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as c:
        yield c


class Remote:
    """A loopback HTTP server whose GET replies the test scripts (``routes[path]``)."""

    def __init__(self) -> None:
        self.routes: dict[str, Any] = {}
        remote = self

        class Handler(http_server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                route = remote.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                route(self)

        self.httpd = http_server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def remote() -> Iterator[Remote]:
    r = Remote()
    yield r
    r.close()


def create(http: httpx.Client, model: str, inp: dict[str, Any]) -> httpx.Response:
    return http.post(f"/v1/models/{model}/predictions", json={"input": inp})


# ---------------------------------------------------------------- paths are refused


@pytest.mark.parametrize(
    "value",
    [
        "/etc/passwd",
        "../../../../etc/passwd",
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "etc/passwd",
        "C:\\Windows\\win.ini",
        "",
    ],
)
def test_a_path_is_not_a_file_input(server: LocalServer, http: httpx.Client, value: str) -> None:
    r = create(http, "files/read", {"f": value})
    assert r.status_code == 422, r.text
    body = r.json()
    assert "file input must be an http(s) URL" in body["detail"]
    assert body["invalid_fields"][0]["field"] == "input.f"
    assert "root:" not in r.text  # the file was never read


def test_paths_inside_a_list_input_are_refused(server: LocalServer, http: httpx.Client) -> None:
    r = create(http, "files/many", {"files": ["data:text/plain,ok", "/etc/hostname"]})
    assert r.status_code == 422
    assert r.json()["invalid_fields"][0]["field"] == "input.files.1"


def test_a_stored_path_input_fails_at_run_time(server: LocalServer) -> None:
    """Rows created before the check (or by other means) never read the disk either."""
    from replicate.local.fetch import input_file_path

    core = server.core
    assert core is not None
    with pytest.raises(ValueError, match="looks like a path"):
        input_file_path(core.files, "/etc/passwd", Path("/nonexistent"))


def test_data_uri_and_http_url_and_upload_are_accepted(
    server: LocalServer, http: httpx.Client, remote: Remote
) -> None:
    def hello(h: Any) -> None:
        h.send_response(200)
        h.send_header("content-length", "5")
        h.end_headers()
        h.wfile.write(b"hello")

    remote.routes["/hello.txt"] = hello
    up = http.post("/v1/files", files={"content": ("u.txt", b"uploaded", "text/plain")}).json()
    for value, want in [
        ("data:text/plain;base64,aGVsbG8=", "hello"),
        (f"{remote.url}/hello.txt", "hello"),
        (up["urls"]["get"], "uploaded"),
    ]:
        r = http.post(
            "/v1/models/files/read/predictions",
            json={"input": {"f": value}},
            headers={"Prefer": "wait"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["output"] == want, r.json()


# ---------------------------------------------------------------- the server's own controls


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{port}/_local/reset",
        "http://localhost:{port}/_local/reset",
        "http://LOCALHOST.:{port}/_local/requests",
        "http://127.1:{port}/_local/reset",
        "http://2130706433:{port}/_local/reset",
        "http://0.0.0.0:{port}/_local/reset",
        "http://[::1]:{port}/_local/reset",
        "http://127.0.0.1:{port}/v1/../_local/reset",
        "http://127.0.0.1:{port}//_local/reset",
        "http://127.0.0.1:{port}/%5Flocal/reset",
        "http://127.0.0.1:{port}/%255Flocal/reset",
        "http://127.0.0.1:{port}/_LOCAL/reset",
    ],
)
def test_nothing_may_target_the_servers_own_controls(
    server: LocalServer, http: httpx.Client, template: str
) -> None:
    url = template.format(port=server.port)
    r = create(http, "files/read", {"f": url})
    assert r.status_code == 422, r.text
    assert "/_local" in r.json()["detail"]
    r = http.post(
        "/v1/models/files/read/predictions",
        json={"input": {"f": "data:text/plain,x"}, "webhook": url},
    )
    assert r.status_code == 422, r.text
    assert "webhook: must not point at this server's /_local" in r.json()["detail"]


def test_same_path_on_another_port_is_allowed(server: LocalServer) -> None:
    own = OwnAddress()
    own.add_bind("127.0.0.1", server.port)
    assert targets_controls(f"http://127.0.0.1:{server.port}/_local/reset", own)
    assert not targets_controls(f"http://127.0.0.1:{server.port + 1}/_local/reset", own)
    assert not targets_controls(f"http://127.0.0.1:{server.port}/v1/predictions", own)
    assert not targets_controls("http://example.com/_local/reset", own)
    assert control_path("/a/./../_local") and not control_path("/_localx")


def test_a_redirect_to_the_controls_is_not_followed(
    server: LocalServer, http: httpx.Client, remote: Remote
) -> None:
    target = f"http://127.0.0.1:{server.port}/_local/reset"

    def redirect(h: Any) -> None:
        h.send_response(302)
        h.send_header("location", target)
        h.send_header("content-length", "0")
        h.end_headers()

    remote.routes["/redirect"] = redirect
    marker = http.post("/v1/files", files={"content": ("keep.txt", b"keep")}).json()
    r = create(http, "files/read", {"f": f"{remote.url}/redirect"})
    assert r.status_code == 201
    row = server.wait_for_status(r.json()["id"], timeout=20)
    assert row["status"] == "failed" and "/_local" in row["error"]
    assert http.get(f"/v1/files/{marker['id']}").status_code == 200  # nothing was reset


def test_a_webhook_that_reaches_the_controls_at_delivery_is_refused(
    server: LocalServer,
) -> None:
    """Defence in depth: the sender checks every URL again before posting."""
    core = server.core
    assert core is not None
    assert core.webhooks.refuse is not None
    assert core.webhooks.refuse(f"http://localhost:{server.port}/_local/reset") is not None
    assert core.webhooks.refuse("http://127.0.0.1:1/hook") is None


# ---------------------------------------------------------------- streamed, capped, timed


def test_remote_input_over_the_size_cap_fails(
    server: LocalServer, http: httpx.Client, remote: Remote
) -> None:
    def big(h: Any) -> None:  # no content-length: the cap applies while streaming
        h.send_response(200)
        h.end_headers()
        for _ in range(64):
            h.wfile.write(b"x" * 1024)

    remote.routes["/big"] = big
    server.set_limits(max_upload_size=16 * 1024)
    try:
        r = create(http, "files/size", {"f": f"{remote.url}/big"})
        row = server.wait_for_status(r.json()["id"], timeout=20)
        assert row["status"] == "failed" and "larger than the limit of 16384" in row["error"]
        small = create(http, "files/size", {"f": "data:text/plain,abc"})
        assert server.wait_for_status(small.json()["id"], timeout=20)["output"] == 3
    finally:
        server.set_limits(max_upload_size=100 * 1024 * 1024)


def test_remote_input_that_never_answers_times_out(server: LocalServer, http: httpx.Client) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        r = create(http, "files/read", {"f": f"http://127.0.0.1:{listener.getsockname()[1]}/x"})
        row = server.wait_for_status(r.json()["id"], timeout=30)
        assert row["status"] == "failed" and "could not fetch input file" in row["error"]
    finally:
        listener.close()
