"""pytest plugin: fixtures for testing code against a local Replicate server.

Loaded for everyone who installs ``replicate`` (``pytest11`` entry point), so importing
it is cheap and safe: Starlette, uvicorn and the client load only inside the fixtures,
and a missing ``[local]`` extra skips the tests that ask for a server instead of
breaking the run. Nothing happens unless a fixture is used.

Fixtures:

- ``replicate_server``: one in-memory server for the whole run, test controls on
  (a :class:`replicate.local.LocalServer` handle; see "Test controls" below).
- ``replicate_base_url``: its base URL (the origin; clients add ``/v1``).
- ``replicate_client``: a ``replicate.Client`` wired to it; the server is reset after each test.
- ``replicate_env``: sets ``REPLICATE_BASE_URL`` and ``REPLICATE_API_TOKEN`` (monkeypatch).

Test controls (docs/local-server.md, "Test controls"), as methods on ``replicate_server`` and as HTTP routes
under ``{base_url}/_local/`` (404 on servers started without ``test_controls=True``):

- Faults: ``replicate_server.add_fault(...)`` / ``POST /_local/faults``. Matcher ``method``,
  ``path`` (glob) or ``operation`` (e.g. ``"predictions.create"``); action ``status``
  (``429`` gets ``Retry-After``: ``retry_after=N``), ``delay_ms``, ``drop`` (close with no
  response), ``hang`` (until the client gives up), ``sse_drop_after=K``, ``webhook_fail=S``,
  ``webhook_drop``, ``webhook_hang``; budget ``times``, ``probability``, ``until``.
  ``replicate_server.faults.list()/clear()``, ``GET``/``DELETE /_local/faults``.
- Lifecycle: ``hold(id)``, ``release(id)``, ``emit(id, chunk, log=...)``,
  ``complete(id, output)``, ``fail(id, error)``, ``abort(id)``
  (``POST /_local/predictions/{id}/{action}``); ``wait_for_status(id, "processing")``.
- Scripted outcomes: ``script("owner/name", {"error": "boom"}, {"output": "Y"},
  {"hold": True}, {"manual": True})`` (``POST /_local/models/{owner}/{name}/script``), one
  per new prediction of that model; ``manual`` leaves it ``processing`` for ``emit``/``complete``.
- Limits: ``set_limits(max_queue_depth=, max_upload_size=, page_sizes={...}, retention=,
  file_expiry=, webhook_backoff_scale=, webhook_timeout=, rate_limits={"create_per_minute":
  600, "other_per_minute": 3000, "burst": N})`` (``POST /_local/limits``; rate limits run on
  the virtual clock).
- Logs: ``requests()`` (method, path, chosen headers, status, timing; never tokens),
  ``webhook_deliveries(prediction_id)``; ``advance_clock("1h")``.
- ``reset()`` (done after each test by ``replicate_client``) clears predictions, files,
  faults, scripts and logs and restores the limits.

Example::

    def test_retries(replicate_server, replicate_client):
        replicate_server.add_fault(path="/v1/account", status=429, retry_after=1, times=2)
        replicate_client.accounts.current()
        assert [e["status"] for e in replicate_server.requests()] == [429, 429, 200]

``--replicate-real`` points ``replicate_base_url``, ``replicate_client`` and
``replicate_env`` at the real API when ``REPLICATE_API_TOKEN`` is set.

``--replicate-tls`` (or ``replicate_tls = true`` in the ini file) serves HTTPS with a local CA,
as ``replicate serve --tls`` does: file outputs are https URLs, ``replicate_client`` trusts
the CA, and ``replicate_env`` also sets ``SSL_CERT_FILE`` and ``NODE_EXTRA_CA_CERTS``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

REAL_BASE_URL = "https://api.replicate.com"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--replicate-real``."""
    group = parser.getgroup("replicate")
    group.addoption(
        "--replicate-real",
        action="store_true",
        default=False,
        help="run replicate_* fixtures against the real Replicate API (needs REPLICATE_API_TOKEN)",
    )
    group.addoption(
        "--replicate-tls",
        action="store_true",
        default=False,
        help="serve the local Replicate server over HTTPS with a local CA (as serve --tls)",
    )
    parser.addini(
        "replicate_tls",
        "serve the local Replicate server over HTTPS with a local CA (as --replicate-tls)",
        type="bool",
        default=False,
    )


def _real(config: pytest.Config) -> bool:
    try:
        return bool(config.getoption("--replicate-real"))
    except ValueError:
        return False


def _tls(config: pytest.Config) -> bool:
    try:
        return bool(config.getoption("--replicate-tls")) or bool(config.getini("replicate_tls"))
    except ValueError:
        return False


def _real_token() -> str:
    token = os.environ.get("REPLICATE_API_TOKEN")
    if not token:
        pytest.skip("--replicate-real needs REPLICATE_API_TOKEN")
    return token


@pytest.fixture(scope="session")
def replicate_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A local Replicate server (in-memory, test controls on) shared by the session.

    The :class:`replicate.local.LocalServer` handle: ``add_fault``, ``hold``/``release``/
    ``emit``/``complete``/``fail``/``abort``, ``script``, ``set_limits``, ``requests()``,
    ``webhook_deliveries()``, ``advance_clock``, ``reset`` (see the module docstring).
    """
    if _real(request.config):
        pytest.skip("replicate_server is local only (--replicate-real is set)")
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401

        from replicate.local.server import LocalServer
    except ImportError as exc:
        pytest.skip(
            f"the local Replicate server needs the [local] extra: pip install 'replicate[local]' ({exc})"
        )
    server = LocalServer(test_controls=True, tls=_tls(request.config))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def replicate_base_url(request: pytest.FixtureRequest) -> str:
    """The base URL of the server under test (local, or the real API with --replicate-real)."""
    if _real(request.config):
        _real_token()
        return REAL_BASE_URL
    server = request.getfixturevalue("replicate_server")
    return str(server.base_url)


def _token(request: pytest.FixtureRequest) -> str:
    if _real(request.config):
        return _real_token()
    return str(request.getfixturevalue("replicate_server").api_token)


def _ca_file(request: pytest.FixtureRequest) -> str | None:
    ca_file = request.getfixturevalue("replicate_server").ca_file
    return None if ca_file is None else str(ca_file)


@pytest.fixture
def replicate_client(request: pytest.FixtureRequest, replicate_base_url: str) -> Iterator[Any]:
    """A ``replicate.Client`` for the server under test; the local server is reset afterwards."""
    import replicate

    options: dict[str, Any] = {}
    ca_file = None if _real(request.config) else _ca_file(request)
    if ca_file is not None:
        import ssl

        options["verify"] = ssl.create_default_context(cafile=ca_file)
    client = replicate.Client(api_token=_token(request), base_url=replicate_base_url, **options)
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                pass
        if not _real(request.config):
            request.getfixturevalue("replicate_server").reset()


@pytest.fixture
def replicate_env(
    request: pytest.FixtureRequest, replicate_base_url: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point ``REPLICATE_BASE_URL``/``REPLICATE_API_TOKEN`` at the server under test."""
    env = {"REPLICATE_BASE_URL": replicate_base_url, "REPLICATE_API_TOKEN": _token(request)}
    ca_file = None if _real(request.config) else _ca_file(request)
    if ca_file is not None:
        env.update(SSL_CERT_FILE=ca_file, NODE_EXTRA_CA_CERTS=ca_file)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env
