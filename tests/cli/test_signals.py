"""The console script when its reader goes away (``| head``) and on Ctrl-C during ``stream``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import replicate

from .conftest import CLI

pytest.importorskip("starlette")
from replicate.local import ConcatenateIterator, Input

CHUNK = "x" * 1000


@pytest.fixture(scope="module")
def release() -> Iterator[threading.Event]:
    gate = threading.Event()
    yield gate
    gate.set()


@pytest.fixture(scope="module", autouse=True)
def models(cli_server: Any, release: threading.Event) -> None:
    def flood(
        chunks: int = Input(description="How many 1000-character chunks", default=300),
    ) -> ConcatenateIterator[str]:  # type: ignore[misc]
        for _ in range(chunks):
            yield CHUNK
        release.wait(120)  # still running when the reader leaves: it must be canceled

    def held(word: str = Input(description="The first word")) -> ConcatenateIterator[str]:  # type: ignore[misc]
        yield word
        release.wait(120)
        yield "never"

    cli_server.register("tests/flood", flood)
    cli_server.register("tests/held", held)


def client_for(cli_server: Any) -> Any:
    return replicate.Client(api_token=cli_server.api_token, base_url=cli_server.base_url)


def latest(cli_server: Any, model: str) -> Any:
    for prediction in client_for(cli_server).predictions.list():
        if prediction.model == model:
            return prediction
    raise AssertionError(f"no prediction of {model}")


def test_stream_into_head_exits_quietly(cli: CLI, cli_server: Any) -> None:
    # More than a pipe buffer of output: the CLI is blocked writing when the reader closes.
    process = cli.popen("stream", "tests/flood")
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.read(10)
    process.stdout.close()
    stderr = process.stderr.read()
    assert first, stderr
    process.wait(timeout=60)
    assert first == "x" * 10
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert "error" not in stderr
    assert process.returncode == 141
    prediction = latest(cli_server, "tests/flood").wait(timeout=60)
    assert prediction.status == "canceled", "a reader that left cancels the prediction"


def test_ctrl_c_in_stream_prints_its_final_line(cli: CLI, cli_server: Any) -> None:
    process = cli.popen("stream", "tests/held", "-i", "word=first")
    assert process.stdout is not None
    try:
        assert process.stdout.read(5) == "first"
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert rest == "\n", "the partial line of output is ended"
    prediction = latest(cli_server, "tests/held")
    assert stderr.splitlines()[-1] == f"Canceled prediction {prediction.id}"
    assert "Traceback" not in stderr
    assert prediction.wait(timeout=60).status == "canceled"
