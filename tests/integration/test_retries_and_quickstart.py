"""Acceptance: injected 429/503 seen through the client's retries; the offline quickstart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import replicate
from replicate.exceptions import ReplicateError
from replicate.local.server import LocalServer


@pytest.fixture
def srv() -> LocalServer:
    with LocalServer(test_controls=True) as s:
        yield s


async def test_429_is_retried_after_retry_after(srv: LocalServer) -> None:
    c = replicate.Client(api_token=srv.api_token, base_url=srv.base_url)
    srv.faults.add(path="/v1/account", status=429, retry_after=1, times=2)
    assert c.accounts.current().username == "local"
    log = [e for e in srv.requests() if e["path"] == "/v1/account"]
    assert [e["status"] for e in log] == [429, 429, 200]
    assert log[2]["time"] - log[1]["time"] >= 0.9  # the client honoured Retry-After: 1
    assert next(e["headers"].get("x-stainless-retry-count") for e in log) in (None, "0")


async def test_503_retried_on_get_and_create_post_is_logged(srv: LocalServer) -> None:
    c = replicate.Client(api_token=srv.api_token, base_url=srv.base_url, retry={"max_attempts": 3})
    srv.faults.add(path="/v1/models/replicate/hello-world", method="GET", status=503, times=1)
    assert c.models.get("replicate/hello-world").name == "hello-world"
    gets = [e["status"] for e in srv.requests() if e["path"] == "/v1/models/replicate/hello-world"]
    assert gets == [503, 200]
    srv.faults.add(
        path="/v1/models/replicate/hello-world/predictions", method="POST", status=503, times=1
    )
    try:
        c.predictions.create(model="replicate/hello-world", input={"text": "x"})
        retried = True
    except ReplicateError as exc:
        assert exc.status == 503
        retried = False
    posts = [
        e["status"]
        for e in srv.requests()
        if e["path"] == "/v1/models/replicate/hello-world/predictions"
    ]
    # Whatever the client decides, the request log records it: one 503, then a retry or nothing.
    assert posts == ([503, 201] if retried else [503])


def test_quickstart_offline_cli(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE_")}
    env.update({"XDG_DATA_HOME": str(tmp_path), "HOME": str(tmp_path), "NO_COLOR": "1"})
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "replicate",
            "run",
            "--local",
            "replicate/hello-world",
            "-i",
            "text=world",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "hello world"
    assert (tmp_path / "replicate" / "local-server" / "state.sqlite3").exists()


def test_run_local_helper(tmp_path: Path) -> None:
    from replicate.local import run_local

    assert (
        run_local("replicate/hello-world", {"text": "world"}, db=str(tmp_path / "q.sqlite3"))
        == "hello world"
    )
    assert (
        run_local(
            "local-demo/stream-text",
            {"prompt": "a b", "max_tokens": 2, "delay_ms": 0},
            db=":memory:",
        )
        == "a b"
    )


def test_package_docstring_example() -> None:
    from replicate.local import serve

    with serve() as base_url:
        client = replicate.Client(api_token="anything", base_url=base_url)
        assert client.run("replicate/hello-world", input={"text": "world"}) == "hello world"

        def shout(text: str) -> str:
            return text.upper()

        base_url.server.register("me/shout", shout)
        assert client.run("me/shout", input={"text": "hi"}) == "HI"
