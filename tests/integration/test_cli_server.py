"""The acceptance scenarios against ``replicate serve`` (``python -m replicate.local``) in a subprocess.

The in-process variant is covered by test_client_local.py; here the same client talks to a
server started from the command line with ``--test-controls``, driven only over HTTP.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import httpx
import pytest

import replicate
from integration.conftest import served
from replicate.exceptions import ModelError
from replicate.local.demo_models import HELLO_WORLD_VERSIONS
from server.helpers import Receiver


@pytest.fixture(scope="module")
def cli_base_url() -> Iterator[str]:
    argv = [sys.executable, "-m", "replicate.local", "--db", ":memory:", "--port", "0"]
    with served([*argv, "--test-controls", "--token", "cli-token"]) as (base, token):
        assert token == "cli-token"
        yield base


# The test controls need a valid token when the server has --token values.
CONTROLS = {"Authorization": "Bearer cli-token"}


@pytest.fixture
def cli_client(cli_base_url: str) -> replicate.Client:
    return replicate.Client(api_token="cli-token", base_url=cli_base_url, poll_interval=0.05)


async def test_cli_run_and_versions(cli_client: replicate.Client) -> None:
    assert cli_client.run("replicate/hello-world", input={"text": "world"}) == "hello world"
    for vid in HELLO_WORLD_VERSIONS:
        assert (
            await cli_client.async_run(f"replicate/hello-world:{vid}", input={"text": "world"})
            == "hello world"
        )


def test_cli_token_mode(cli_base_url: str) -> None:
    r = httpx.get(f"{cli_base_url}/v1/account", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert r.json() == {
        "title": "Unauthenticated",
        "detail": "You did not pass a valid authentication token",
        "status": 401,
    }


def test_cli_stream_cancel_fail(cli_client: replicate.Client) -> None:
    v = cli_client.models.get("local-demo/stream-text").latest_version
    outs = [
        ev.data
        for ev in cli_client.stream(
            f"local-demo/stream-text:{v.id}",
            input={"prompt": "p q", "max_tokens": 4, "delay_ms": 1},
        )
        if getattr(ev.event, "value", ev.event) == "output"
    ]
    assert "".join(outs) == "p q p q"
    p = cli_client.predictions.create(model="local-demo/sleep", input={"seconds": 600, "tick": 0.1})
    c = cli_client.predictions.cancel(p.id)
    assert c.status == "canceled"
    with pytest.raises(ModelError, match="cli boom"):
        cli_client.run("local-demo/fail", input={"message": "cli boom"})


def test_cli_files_and_webhook(cli_client: replicate.Client, cli_base_url: str) -> None:
    f = cli_client.files.create(io.BytesIO(b"cli file"), filename="c.txt")
    assert cli_client.files.get(f.id).checksums == f.checksums
    signed = httpx.get(f"{cli_base_url}/_local/files/{f.id}/signed-url", headers=CONTROLS).json()[
        "url"
    ]
    assert httpx.get(signed).content == b"cli file"
    receiver = Receiver()
    try:
        p = cli_client.predictions.create(
            model="replicate/hello-world",
            input={"text": "hook"},
            webhook=receiver.url,
            webhook_events_filter=["completed"],
        )
        reqs = receiver.wait_for(lambda rs: any(r["json"]["id"] == p.id for r in rs))
        secret = cli_client.webhooks.default.secret()
        mine = [r for r in reqs if r["json"]["id"] == p.id]
        assert len(mine) == 1
        assert replicate.webhooks.validate(
            headers=mine[0]["headers"], body=mine[0]["body"].decode(), secret=secret
        )
    finally:
        receiver.close()


def test_cli_deadline_and_data_removal(cli_client: replicate.Client, cli_base_url: str) -> None:
    busy = cli_client.predictions.create(
        model="local-demo/sleep", input={"seconds": 600, "tick": 0.1}
    )
    queued = cli_client.predictions.create(
        model="local-demo/sleep", input={"seconds": 1}, cancel_after="5s"
    )
    assert queued.status == "starting"
    httpx.post(f"{cli_base_url}/_local/clock", json={"advance": "6s"}, headers=CONTROLS)
    queued.wait()
    assert queued.status == "aborted"
    cli_client.predictions.cancel(busy.id)
    done = cli_client.predictions.create(
        model="replicate/hello-world", input={"text": "old"}, wait=True
    )
    httpx.post(f"{cli_base_url}/_local/clock", json={"advance": "2h"}, headers=CONTROLS)
    gone = cli_client.predictions.get(done.id)
    assert gone.data_removed is True and gone.output is None
