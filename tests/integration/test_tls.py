"""HTTPS on loopback: ``LocalServer(tls=True)``, ``serve(tls=True)`` and ``replicate serve --tls``.

Clients trust the server through ``SSL_CERT_FILE`` (httpx honours it), file outputs are
``https:`` URLs (so clients give file objects), and the CA lives in the data directory.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import replicate
from replicate.helpers import FileOutput
from replicate.local import serve
from replicate.local.server import LocalServer

pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def tls_server() -> Iterator[LocalServer]:
    with LocalServer(tls=True) as s:
        yield s


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_client_trusts_the_server_through_ssl_cert_file(
    tls_server: LocalServer, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_server.base_url.startswith("https://127.0.0.1:")
    assert tls_server.ca_file is not None and Path(tls_server.ca_file).is_file()
    monkeypatch.setenv("SSL_CERT_FILE", tls_server.ca_file)
    monkeypatch.setenv("REPLICATE_BASE_URL", tls_server.base_url)
    monkeypatch.setenv("REPLICATE_API_TOKEN", tls_server.api_token)
    client = replicate.Client()
    if mode == "sync":
        text = client.run("replicate/hello-world", input={"text": "tls"})
        image = client.run("local-demo/make-file", input={"text": "tls"})
        data = image.read()
    else:
        text = await client.async_run("replicate/hello-world", input={"text": "tls"})
        image = await client.async_run("local-demo/make-file", input={"text": "tls"})
        data = await image.aread()
    assert text == "hello tls"
    # An https file output: a file object, fetched over the same trusted TLS.
    assert isinstance(image, FileOutput) and image.url.startswith(tls_server.base_url + "/")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_certificate_is_not_trusted_without_the_ca(tls_server: LocalServer) -> None:
    """Nothing trusts a local CA by default: the check is real, not switched off."""
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_server.base_url}/v1/account", verify=ssl.create_default_context())
    r = httpx.get(
        f"{tls_server.base_url}/v1/account",
        headers={"Authorization": f"Bearer {tls_server.api_token}"},
        verify=ssl.create_default_context(cafile=tls_server.ca_file),
    )
    assert r.status_code == 200 and r.json()["username"] == "local"


def test_in_memory_servers_keep_the_ca_in_a_temporary_directory() -> None:
    with serve(tls=True) as base_url:
        ca_file = base_url.server.ca_file
        assert base_url.startswith("https://") and ca_file is not None
        directory = Path(ca_file).parent
        assert {p.name for p in directory.iterdir()} >= {"ca.pem", "server.pem"}
        assert (directory / "server.pem").stat().st_mode & 0o077 == 0  # the key: owner only
    assert not directory.exists()


def test_on_disk_servers_keep_the_same_ca_in_the_data_directory(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite3"
    with LocalServer(db=str(db), tls=True) as first:
        assert first.ca_file == str(tmp_path / "tls" / "ca.pem")
        ca = (tmp_path / "tls" / "local-ca.pem").read_bytes()
    with LocalServer(db=str(db), tls=True) as second:
        assert (tmp_path / "tls" / "local-ca.pem").read_bytes() == ca
        assert second.ca_file is not None
        bundle = Path(second.ca_file).read_bytes()
        assert bundle.startswith(ca.strip())  # the local CA first, then the public roots
        trust = ssl.create_default_context(cafile=second.ca_file)
        r = httpx.get(f"{second.base_url}/_local/health", verify=trust)
        assert r.status_code == 200
    assert (tmp_path / "tls" / "ca.pem").is_file()  # kept: clients keep trusting it


def test_replicate_serve_tls_prints_what_clients_need(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "replicate.local", "--tls", "--port", "0", "--db", ":memory:"]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    printed: dict[str, str] = {}
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            key, sep, value = line.strip().partition("=")
            if sep and key.isupper():
                printed[key] = value
            if {"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REPLICATE_API_TOKEN"} <= set(printed):
                break
        assert printed.get("REPLICATE_BASE_URL", "").startswith("https://127.0.0.1:"), lines
        ca = printed["SSL_CERT_FILE"]
        assert printed["NODE_EXTRA_CA_CERTS"] == ca and Path(ca).is_file()
        # What a user does with the banner: export it and run a client in a fresh process.
        code = (
            "import replicate; out = replicate.run('local-demo/make-file', input={'text': 'x'});"
            "print(type(out).__name__, out.url.split(':')[0], out.read()[:4])"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, **printed},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "FileOutput https b'\\x89PNG'"
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    assert not Path(ca).exists()  # an in-memory server's CA goes with it
