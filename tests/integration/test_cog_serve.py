"""Users' Cog models served by the local server (docs/local-server.md, "Your own Cog models").

``replicate serve --cog acme/echo=DIR`` in a subprocess, driven by the library's client over
HTTP (run, stream, input validation naming the field, cancel, a ``Path`` output), the same
through ``LocalServer(cog=...)`` in-process (plus Cog train mode, deployments that keep the
worker warm and a changed source), and the exit code of a bad ``--cog`` directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("cog")

import replicate
from integration.conftest import served
from replicate.exceptions import ReplicateError
from replicate.local.server import LocalServer
from server.helpers import wait_until

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ECHO_DIR = FIXTURES / "cog_echo"
FILE_DIR = FIXTURES / "cog_file"
TRAINABLE_DIR = FIXTURES / "cog_trainable"
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
#: Generous bound for a Cog runtime to start and answer (never reached when things work).
TIMEOUT = 120


def _serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "replicate", "serve", *args]


@pytest.fixture(scope="module")
def cli_server() -> Iterator[str]:
    """``replicate serve --cog acme/echo=... --cog acme/file=... --port 0`` in a subprocess."""
    argv = _serve_command("--db", ":memory:", "--port", "0", "--no-demo-models")
    cogs = ["--cog", f"acme/echo={ECHO_DIR}", "--cog", f"acme/file={FILE_DIR}"]
    with served([*argv, *cogs], stop_timeout=60) as (base, _token):
        yield base


@pytest.fixture
def cli_client(cli_server: str) -> replicate.Client:
    return replicate.Client(api_token="r8_any", base_url=cli_server, poll_interval=0.05)


# ------------------------------------------------------------------ the CLI variant


def test_cli_serves_the_cog_model_with_its_schema(cli_server: str) -> None:
    r = httpx.get(f"{cli_server}/v1/models/acme/echo", headers={"Authorization": "Bearer x"})
    assert r.status_code == 200, r.text
    latest = r.json()["latest_version"]
    assert len(latest["id"]) == 64 and latest["cog_version"]
    schemas = latest["openapi_schema"]["components"]["schemas"]
    assert schemas["Input"]["properties"]["repeat"]["maximum"] == 10
    assert schemas["Output"]["x-cog-array-type"] == "iterator"


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_cli_run_and_stream(cli_client: replicate.Client, mode: str) -> None:
    if mode == "sync":
        out = cli_client.run("acme/echo", input={"text": "hi", "repeat": 3})
        streamed = [
            str(e) for e in cli_client.stream("acme/echo", input={"text": "s", "repeat": 2})
        ]
    else:
        out = await cli_client.async_run("acme/echo", input={"text": "hi", "repeat": 3})
        stream = await cli_client.async_stream("acme/echo", input={"text": "s", "repeat": 2})
        streamed = [str(e) async for e in stream]
    if not isinstance(out, list):
        out = [x async for x in out] if hasattr(out, "__aiter__") else list(out)
    assert out == ["hi0", "hi1", "hi2"]
    assert "".join(streamed) == "s0s1"


def test_cli_validation_names_the_field(cli_client: replicate.Client, cli_server: str) -> None:
    before = httpx.get(f"{cli_server}/v1/predictions", headers={"Authorization": "Bearer x"})
    with pytest.raises(ReplicateError) as info:
        cli_client.predictions.create(model="acme/echo", input={"text": "x", "repeat": 99})
    err = info.value
    assert err.status == 422
    assert "repeat" in (err.detail or "")
    assert "less than or equal to 10" in (err.detail or "")
    after = httpx.get(f"{cli_server}/v1/predictions", headers={"Authorization": "Bearer x"})
    assert after.json()["results"] == before.json()["results"]  # no prediction was created


def test_cli_cancel_keeps_partial_output(cli_client: replicate.Client, tmp_path: Path) -> None:
    never = tmp_path / "never-created"
    p = cli_client.predictions.create(
        model="acme/echo", input={"text": "c", "repeat": 3, "wait_for_file": str(never)}
    )

    def first_chunk() -> bool:
        p.reload()
        assert p.status not in TERMINAL, p
        return bool(p.output)

    wait_until(first_chunk, timeout=TIMEOUT)
    p.cancel()

    def ended() -> bool:
        p.reload()
        return p.status in TERMINAL

    wait_until(ended, timeout=TIMEOUT)
    assert p.status == "canceled"
    assert p.output == ["c0"]
    assert "chunk 0" in (p.logs or "")


def test_cli_path_output(cli_client: replicate.Client, cli_server: str) -> None:
    out = cli_client.run("acme/file", input={"text": "file body"})
    assert str(getattr(out, "url", out)).startswith(cli_server)
    assert str(getattr(out, "url", out)).endswith("/echo.txt")
    assert out.read() == b"file body"


def test_cli_bad_cog_directory_exits_2_with_one_error_line(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    for spec in ("bad=/nonexistent", f"acme/echo={missing}"):
        proc = subprocess.run(
            _serve_command("--db", ":memory:", "--port", "0", "--cog", spec),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert lines[0].startswith(f"error: --cog {spec}: "), lines
        assert "REPLICATE_BASE_URL" not in proc.stdout
    assert lines[0].endswith(f"Cog model directory {str(missing)!r} does not exist")


def test_cli_same_name_twice_is_refused() -> None:
    proc = subprocess.run(
        _serve_command(
            "--db",
            ":memory:",
            "--port",
            "0",
            "--cog",
            f"acme/echo={ECHO_DIR}",
            "--cog",
            f"acme/echo={FILE_DIR}",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --cog acme/echo is given more than once"


# ------------------------------------------------------------------ the in-process variant


@pytest.fixture(scope="module")
def local() -> Iterator[LocalServer]:
    with LocalServer(
        cog={"acme/echo": ECHO_DIR, "acme/greeter": TRAINABLE_DIR}, demo_models=False
    ) as server:
        yield server


@pytest.fixture
def client(local: LocalServer) -> replicate.Client:
    return replicate.Client(api_token=local.api_token, base_url=local.base_url, poll_interval=0.05)


def test_in_process_run_stream_and_validation(local: LocalServer, client: replicate.Client) -> None:
    assert list(client.run("acme/echo", input={"text": "a", "repeat": 2})) == ["a0", "a1"]
    assert "".join(str(e) for e in client.stream("acme/echo", input={"text": "b"})) == "b0"
    with pytest.raises(ReplicateError) as info:
        client.run("acme/echo", input={"text": "x", "repeat": 99})
    assert info.value.status == 422 and "repeat" in (info.value.detail or "")


def test_in_process_training_through_cog_train_mode(
    local: LocalServer, client: replicate.Client
) -> None:
    """A Cog model with ``train:`` trains in train mode; the new version runs setup(weights)."""
    client.models.create(owner="local", name="greeter-howdy", visibility="private", hardware="cpu")
    base = client.models.get("acme/greeter").latest_version
    assert base is not None
    assert "TrainingInput" in base.openapi_schema["components"]["schemas"]
    with pytest.raises(ReplicateError) as info:  # TrainingInput: epochs le=3
        client.trainings.create(
            model="acme/greeter",
            version=base.id,
            input={"greeting": "howdy", "epochs": 9},
            destination="local/greeter-howdy",
        )
    assert info.value.status == 422 and "epochs" in (info.value.detail or "")
    training = client.trainings.create(
        model="acme/greeter",
        version=base.id,
        input={"greeting": "howdy", "epochs": 2},
        destination="local/greeter-howdy",
    )
    training.wait()
    assert training.status == "succeeded", (training.error, training.logs)
    assert "epoch 1" in (training.logs or "")
    version = training.output["version"]
    assert version.startswith("local/greeter-howdy:")
    assert httpx.get(training.output["weights"]).text == "howdy"
    assert client.run(version, input={"text": "bob"}) == "howdy bob"
    # A training id resolves on the predictions path too, in the training's shape.
    r = httpx.get(
        f"{local.base_url}/v1/predictions/{training.id}",
        headers={"Authorization": f"Bearer {local.api_token}"},
    )
    assert r.status_code == 200 and r.json()["status"] == "succeeded"
    assert set(r.json()["urls"]) == {"get", "cancel"} and "data_removed" not in r.json()


def test_in_process_deployment_keeps_the_worker_warm(
    local: LocalServer, client: replicate.Client
) -> None:
    core = local.core
    assert core is not None and core.cog is not None
    model = next(m for m in core.cog.models.values() if m.owner_name == "acme/greeter")
    worker = core.cog.get(model)
    worker.stop()
    assert worker.wait_stopped(TIMEOUT) and worker.pid is None
    deployment = client.deployments.create(
        name="greeter",
        model="acme/greeter",
        version=model.version_id,
        hardware="cpu",
        min_instances=1,
        max_instances=1,
    )
    wait_until(lambda: worker.state == "ready", timeout=TIMEOUT)
    p = deployment.predictions.create(input={"text": "dep"})
    p.wait()
    assert p.status == "succeeded" and p.output == "hello dep"
    # In use by a deployment: the version cannot be deleted.
    r = httpx.delete(
        f"{local.base_url}/v1/models/acme/greeter/versions/{model.version_id}",
        headers={"Authorization": f"Bearer {local.api_token}"},
    )
    assert r.status_code == 409 and "deployment" in r.json()["detail"]
    client.deployments.delete("local", "greeter")


def test_changed_source_is_no_longer_available(tmp_path: Path) -> None:
    """A version whose files changed since it was registered gives 422."""
    model_dir = tmp_path / "echo"
    shutil.copytree(ECHO_DIR, model_dir)
    with LocalServer(cog={"acme/echo": model_dir}, demo_models=False) as server:
        headers = {"Authorization": f"Bearer {server.api_token}"}
        with (model_dir / "predict.py").open("a") as f:
            f.write("\n# changed\n")
        r = httpx.post(
            f"{server.base_url}/v1/models/acme/echo/predictions",
            json={"input": {"text": "x"}},
            headers=headers,
        )
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == "This version's source is no longer available"
        assert json.loads(r.text)["status"] == 422


def test_bad_cog_directory_in_process(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        LocalServer(cog={"acme/echo": tmp_path / "missing"}).start()


def test_restart_keeps_the_version_and_refuses_an_old_one(tmp_path: Path) -> None:
    """An unchanged directory keeps its id across restarts; after a code
    change the old version stays listed but answers 422 (no implementation any more)."""
    model_dir = tmp_path / "echo"
    shutil.copytree(ECHO_DIR, model_dir)
    db = str(tmp_path / "state.sqlite3")

    def start() -> LocalServer:
        return LocalServer(cog={"acme/echo": model_dir}, demo_models=False, db=db)

    with start() as server:
        assert server.core is not None and server.core.cog is not None
        (old,) = server.core.cog.models
    with start() as server:
        assert server.core is not None and server.core.cog is not None
        assert list(server.core.cog.models) == [old]
    (model_dir / "predict.py").write_text((model_dir / "predict.py").read_text() + "\n# changed\n")
    with start() as server:
        assert server.core is not None and server.core.cog is not None
        (new,) = server.core.cog.models
        assert new != old
        headers = {"Authorization": f"Bearer {server.api_token}"}
        versions = httpx.get(
            f"{server.base_url}/v1/models/acme/echo/versions", headers=headers
        ).json()["results"]
        assert [v["id"] for v in versions] == [new, old]
        r = httpx.post(
            f"{server.base_url}/v1/predictions",
            json={"version": old, "input": {"text": "x"}},
            headers=headers,
        )
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == "This version's source is no longer available"
