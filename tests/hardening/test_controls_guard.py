"""The /_local test controls are guarded: a valid token when tokens are set, and no
non-loopback bind unless forced."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from replicate.local.cli import serve_main
from replicate.local.server import LocalServer

TOKEN = "r8_guard_token"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True, token=TOKEN) as s:
        yield s


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_local/requests"),
        ("GET", "/_local/faults"),
        ("POST", "/_local/reset"),
        ("POST", "/_local/clock"),
        ("GET", "/_local/limits"),
        ("GET", "/_local/webhooks/deliveries"),
        ("POST", "/_local/predictions/x/hold"),
        ("GET", "/_local/models/local-demo/sleep/script"),
        ("GET", "/_local/files/x/signed-url"),
    ],
)
@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Bearer {TOKEN}x", "Bearer r8_guard"])
def test_controls_need_a_valid_token(
    server: LocalServer, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = httpx.request(method, server.base_url + path, headers=headers, json={"advance": "1h"})
    assert r.status_code == 401, r.text
    assert r.json()["detail"]


def test_controls_work_with_the_token_and_health_stays_open(server: LocalServer) -> None:
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(server.base_url + "/_local/requests", headers=ok).status_code == 200
    assert httpx.post(server.base_url + "/_local/reset", headers=ok).status_code == 204
    assert httpx.get(server.base_url + "/_local/health").status_code == 200


def test_any_token_mode_keeps_controls_open_on_loopback() -> None:
    with LocalServer(test_controls=True) as s:
        assert httpx.get(s.base_url + "/_local/limits").status_code == 200


def test_controls_without_the_option_are_not_found(server: LocalServer) -> None:
    with LocalServer(token=TOKEN) as s:
        r = httpx.get(s.base_url + "/_local/requests", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 404


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_non_loopback_bind_with_controls_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="--allow-remote-controls"):
        LocalServer(test_controls=True, token=TOKEN, host=host).start()


def test_non_loopback_bind_with_controls_can_be_forced() -> None:
    with LocalServer(
        test_controls=True, token=TOKEN, host="0.0.0.0", allow_remote_controls=True
    ) as s:
        r = httpx.get(
            f"http://127.0.0.1:{s.port}/_local/limits",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 200


def test_serve_refuses_remote_controls_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = serve_main(
        [
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--test-controls",
            "--db",
            ":memory:",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "--allow-remote-controls" in err and "0.0.0.0" in err


@pytest.mark.parametrize("value", ["nan", "forever", "inf", "1e400"])
def test_serve_refuses_a_bad_cancel_grace(capsys: pytest.CaptureFixture[str], value: str) -> None:
    assert serve_main(["--port", "0", "--db", ":memory:", "--cancel-grace", value]) == 2
    assert "--cancel-grace" in capsys.readouterr().err


def test_serve_help_documents_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        serve_main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--allow-remote-controls" in out and "--cancel-grace" in out
