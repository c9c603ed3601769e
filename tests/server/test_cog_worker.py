"""Cog models through the real Cog runtime (coglet), without docker or ``cog build``.

Fixtures live in tests/fixtures/cog_*: ``cog_echo`` (BasePredictor.predict -> Iterator[str],
``repeat`` with ge=1/le=10, a ``wait_for_file`` input to block until the test releases it),
``cog_file`` (BaseRunner.run -> Path, optional Path input), ``cog_frames`` (async run ->
AsyncIterator[Path]), ``cog_trainable`` (train mode; setup(weights)) and
``cog_setup_fails`` (setup raises).
Every wait is on an event or a state; nothing sleeps and hopes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cog")

import httpx

from replicate.local.cog import (
    CogDirError,
    CogEvent,
    CogFile,
    CogModel,
    CogSetupError,
    CogWorker,
    CogWorkerPool,
    iter_model_files,
    parse_cog_option,
    register_cog_dir,
    trained_model,
    version_id_for,
)
from replicate.local.cog.callbacks import decode_data_uri
from replicate.local.cog.worker import model_error

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ECHO_DIR = FIXTURES / "cog_echo"
FILE_DIR = FIXTURES / "cog_file"
BROKEN_DIR = FIXTURES / "cog_setup_fails"
FRAMES_DIR = FIXTURES / "cog_frames"
TRAINABLE_DIR = FIXTURES / "cog_trainable"


class Recorder:
    """Collects events; optionally reacts to the first output chunk (in the predict thread)."""

    def __init__(self, on_first_output: Callable[[], object] | None = None) -> None:
        self.events: list[CogEvent] = []
        self.on_first_output = on_first_output

    def __call__(self, event: CogEvent) -> None:
        self.events.append(event)
        if event.type == "output" and self.on_first_output is not None:
            hook, self.on_first_output = self.on_first_output, None
            hook()

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, kind: str) -> list[Any]:
        return [e.data for e in self.events if e.type == kind]


# ------------------------------------------------------------------ shared models and workers


@pytest.fixture(scope="module")
def echo_model() -> CogModel:
    return register_cog_dir("acme/echo", ECHO_DIR)


@pytest.fixture(scope="module")
def file_model() -> CogModel:
    return register_cog_dir("acme/file", FILE_DIR)


@pytest.fixture(scope="module")
def broken_model() -> CogModel:
    return register_cog_dir("acme/broken", BROKEN_DIR)


@pytest.fixture(scope="module")
def echo_worker(echo_model: CogModel) -> Iterator[CogWorker]:
    worker = CogWorker(echo_model, idle_timeout=None)
    yield worker
    worker.close()


@pytest.fixture(scope="module")
def disposable_echo_worker(echo_model: CogModel) -> Iterator[CogWorker]:
    """A second worker of the echo model that tests may kill (it restarts on demand)."""
    worker = CogWorker(echo_model, idle_timeout=None, cancel_grace=1.0, restart_backoff=0.1)
    yield worker
    worker.close()


@pytest.fixture(scope="module")
def file_worker(file_model: CogModel) -> Iterator[CogWorker]:
    """The file model's worker; it stops after 0.3 s idle and restarts on demand."""
    worker = CogWorker(file_model, idle_timeout=0.3, on_stop=lambda w: STOPS.append(w.starts))
    yield worker
    worker.close()


STOPS: list[int] = []


# ------------------------------------------------------------------ registration and schema


def test_schema_generated_without_cog_build(echo_model: CogModel) -> None:
    doc = echo_model.schema
    assert doc["openapi"] == "3.0.2"
    assert doc["info"] == {"title": "Cog", "version": "0.1.0"}
    schemas = doc["components"]["schemas"]
    for name in (
        "Input",
        "Output",
        "Status",
        "WebhookEvent",
        "PredictionRequest",
        "PredictionResponse",
        "ValidationError",
        "HTTPValidationError",
    ):
        assert name in schemas, name
    inp = schemas["Input"]
    assert inp["title"] == "Input"
    assert inp["required"] == ["text"]
    assert list(inp["properties"]) == [
        "text",
        "repeat",
        "wait_for_file",
        "ignore_cancel",
        "fail_with",
    ]
    assert inp["properties"]["text"] == {
        "title": "Text",
        "type": "string",
        "description": "Text to echo",
        "x-order": 0,
    }
    repeat = inp["properties"]["repeat"]
    assert repeat["type"] == "integer"
    assert (repeat["default"], repeat["minimum"], repeat["maximum"], repeat["x-order"]) == (
        1,
        1,
        10,
        1,
    )
    assert inp["properties"]["ignore_cancel"]["default"] is False
    assert schemas["Output"] == {
        "title": "Output",
        "type": "array",
        "items": {"type": "string"},
        "x-cog-array-type": "iterator",
    }
    assert echo_model.is_iterator
    assert echo_model.cog_version.startswith("0.")
    assert echo_model.predict_ref == "predict.py:Predictor"
    assert echo_model.concurrency == 1
    assert echo_model.missing_packages == ()
    assert "/predictions" in doc["paths"]


def test_file_model_schema_has_enum_and_uri_output(file_model: CogModel) -> None:
    schemas = file_model.schema["components"]["schemas"]
    assert schemas["Output"] == {"title": "Output", "type": "string", "format": "uri"}
    fmt = schemas["Input"]["properties"]["format"]
    assert fmt == {
        "allOf": [{"$ref": "#/components/schemas/format"}],
        "default": "txt",
        "x-order": 1,
    }
    assert schemas["format"]["enum"] == ["txt", "md"]
    source = schemas["Input"]["properties"]["source"]
    assert source["format"] == "uri" and source["nullable"] is True
    assert schemas["Input"]["required"] == ["text"]
    assert not file_model.is_iterator


def test_register_rejects_bad_directories(tmp_path: Path) -> None:
    with pytest.raises(CogDirError, match="does not exist"):
        register_cog_dir("acme/x", tmp_path / "missing")
    with pytest.raises(CogDirError, match=re.escape("no cog.yaml")):
        register_cog_dir("acme/x", tmp_path)
    (tmp_path / "cog.yaml").write_text("build:\n  python_version: '3.11'\n")
    with pytest.raises(CogDirError, match="no 'predict' entry"):
        register_cog_dir("acme/x", tmp_path)
    (tmp_path / "cog.yaml").write_text('predict: "predict.py"\n')
    with pytest.raises(CogDirError, match=re.escape('must look like "predict.py:Predictor"')):
        register_cog_dir("acme/x", tmp_path)
    (tmp_path / "cog.yaml").write_text('predict: "predict.py:Predictor"\n')
    with pytest.raises(CogDirError, match=re.escape("predict.py, which does not exist")):
        register_cog_dir("acme/x", tmp_path)
    (tmp_path / "predict.py").write_text("import no_such_module_anywhere\n")
    with pytest.raises(CogDirError, match="no_such_module_anywhere"):
        register_cog_dir("acme/x", tmp_path)
    (tmp_path / "cog.yaml").write_text("predict: [\n")
    with pytest.raises(CogDirError, match="not valid YAML"):
        register_cog_dir("acme/x", tmp_path)
    with pytest.raises(CogDirError, match="OWNER/NAME"):
        register_cog_dir("no-slash", ECHO_DIR)


def test_parse_cog_option() -> None:
    assert parse_cog_option("acme/echo=/models/echo") == ("acme/echo", Path("/models/echo"))
    for bad in ("acme/echo", "acme/echo=", "acme=dir", "a/b/c=dir"):
        with pytest.raises(CogDirError):
            parse_cog_option(bad)


def test_version_id_is_a_stable_content_hash(
    tmp_path: Path, echo_model: CogModel, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "echo"
    shutil.copytree(ECHO_DIR, copy)
    first = register_cog_dir("acme/echo", copy)
    assert len(first.version_id) == 64 and int(first.version_id, 16) >= 0
    # Same content elsewhere: same id (so restarts and moves keep it).
    assert first.version_id == echo_model.version_id
    assert first.source_available()
    assert version_id_for(copy, schema=first.schema, cog_version=first.cog_version) == (
        first.version_id
    )

    # Caches, bytecode and the .cog dir do not count.
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "predict.cpython-311.pyc").write_bytes(b"junk")
    (copy / "stale.pyc").write_bytes(b"junk")
    (copy / ".cog").mkdir()
    (copy / ".cog" / "tmp").write_text("x")
    assert version_id_for(copy) == version_id_for(ECHO_DIR)
    assert [rel for rel, _ in iter_model_files(copy)] == ["cog.yaml", "predict.py"]

    # .dockerignore'd files do not count; other files do.
    (copy / ".dockerignore").write_text("weights/\n*.log\n")
    (copy / "weights").mkdir()
    (copy / "weights" / "big.bin").write_bytes(b"0" * 1024)
    (copy / "run.log").write_text("noise")
    assert [rel for rel, _ in iter_model_files(copy)] == [".dockerignore", "cog.yaml", "predict.py"]

    # A code change gives a new version; the old one can no longer run.
    before = version_id_for(copy)
    with (copy / "predict.py").open("a") as f:
        f.write("\n# changed\n")
    assert version_id_for(copy) != before
    assert not first.source_available()
    stale = CogWorker(first).predict("stale-1", {"text": "x"})
    assert stale.status == "failed"
    assert stale.error is not None
    assert stale.error.startswith("This version's source is no longer available")
    # (cog.yaml is part of the content too; its build packages are checked, not installed)
    (copy / "requirements.txt").write_text("# pinned\nrequests>=2\nno-such-dist-b==1.0\n")
    (copy / "cog.yaml").write_text(
        "build:\n"
        "  python_packages:\n"
        "    - pyyaml==6.0\n"
        "    - no-such-dist-a[extra]==0.1\n"
        "  python_requirements: requirements.txt\n"
        'predict: "predict.py:Predictor"\n'
    )
    with caplog.at_level(logging.WARNING, logger="replicate.local"):
        changed = register_cog_dir("acme/echo", copy)
    assert changed.version_id not in (first.version_id, before)
    assert changed.missing_packages == ("no-such-dist-a", "no-such-dist-b")
    assert "no-such-dist-a, no-such-dist-b" in caplog.text

    # Schema and Cog version are part of the id when given.
    assert version_id_for(copy, cog_version="1") != version_id_for(copy, cog_version="2")


def test_schema_works_with_the_servers_validator(
    echo_model: CogModel, file_model: CogModel
) -> None:
    schema_mod = pytest.importorskip("replicate.local.schema")
    validate = schema_mod.validate_input
    assert validate(echo_model.schema, {"text": "hi", "repeat": 3}) == []
    issues = validate(echo_model.schema, {"text": "hi", "repeat": 99})
    assert [i["field"] for i in issues] == ["input.repeat"]
    assert "10" in issues[0]["description"]
    issues = validate(echo_model.schema, {"repeat": 2})
    assert any("text" in i["description"] for i in issues)
    issues = validate(file_model.schema, {"text": "x", "format": "pdf"})
    assert [i["field"] for i in issues] == ["input.format"]


# ------------------------------------------------------------------ running


def test_run_streams_chunks_in_order(echo_worker: CogWorker) -> None:
    rec = Recorder()
    result = echo_worker.predict("run-1", {"text": "hi", "repeat": 5}, rec)
    assert result.status == "succeeded", result
    assert result.output == ["hi0", "hi1", "hi2", "hi3", "hi4"]
    assert rec.of("output") == result.output
    assert rec.types[0] == "start"
    assert rec.types[-1] == "completed"
    assert rec.types.count("completed") == 1
    assert rec.events[-1].data is result
    assert "".join(rec.of("logs")) == result.logs == "".join(f"chunk {i}\n" for i in range(5))
    assert result.error is None
    assert result.metrics["predict_time"] > 0


def test_runtime_serves_the_generated_schema(echo_worker: CogWorker, echo_model: CogModel) -> None:
    echo_worker.start()
    resp = httpx.get(echo_worker.base_url + "/openapi.json")
    assert resp.status_code == 200
    assert resp.json() == json.loads(json.dumps(echo_model.schema))


def test_runtime_validation_errors_become_clean_failures(echo_worker: CogWorker) -> None:
    rec = Recorder()
    result = echo_worker.predict("bad-1", {"text": "hi", "repeat": 99}, rec)
    assert result.status == "failed"
    assert result.error == "Invalid input: repeat: 99 is greater than the maximum of 10"
    assert rec.types == ["completed"]
    result = echo_worker.predict("bad-2", {"repeat": 2})
    assert result.status == "failed"
    assert result.error == "Invalid input: text: Field required"


def test_model_exception_fails_with_its_message(echo_worker: CogWorker) -> None:
    rec = Recorder()
    result = echo_worker.predict("fail-1", {"text": "f", "repeat": 3, "fail_with": "boom"}, rec)
    assert result.status == "failed"
    assert result.error == "boom"
    assert result.output == ["f0"]
    assert result.logs == "chunk 0\nValueError: boom\n"
    assert "".join(rec.of("logs")) == result.logs
    assert rec.types[-1] == "completed"


def test_cancel_while_processing_keeps_partial_output(
    echo_worker: CogWorker, tmp_path: Path
) -> None:
    starts = echo_worker.starts
    rec = Recorder(on_first_output=lambda: canceled.append(echo_worker.cancel("cancel-1")))
    canceled: list[bool] = []
    flag = tmp_path / "never-created"
    result = echo_worker.predict(
        "cancel-1", {"text": "w", "repeat": 3, "wait_for_file": str(flag)}, rec
    )
    assert canceled == [True]
    assert result.status == "canceled"
    assert result.output == ["w0"]
    assert result.error is None
    assert rec.types[0] == "start" and rec.types[-1] == "completed"
    assert echo_worker.starts == starts  # the runtime honoured the cancel: no restart
    assert echo_worker.cancel("cancel-1") is False  # no longer running
    # The worker keeps serving.
    assert echo_worker.predict("after-cancel", {"text": "ok"}).output == ["ok0"]


def test_blocked_prediction_finishes_when_released(echo_worker: CogWorker, tmp_path: Path) -> None:
    flag = tmp_path / "release"
    refused: list[bool] = []

    def busy_then_release() -> None:
        refused.append(echo_worker.stop(only_if_idle=True))  # busy: the idle stop backs off
        flag.touch()

    rec = Recorder(on_first_output=busy_then_release)
    result = echo_worker.predict(
        "release-1", {"text": "r", "repeat": 2, "wait_for_file": str(flag)}, rec
    )
    assert result.status == "succeeded"
    assert rec.of("output") == ["r0", "r1"]
    assert refused == [False]
    assert echo_worker.pid is not None


def test_path_output_is_handed_over_as_a_file(file_worker: CogWorker) -> None:
    rec = Recorder()
    result = file_worker.predict("file-1", {"text": "# hello file", "format": "md"}, rec)
    assert result.status == "succeeded", result
    out = result.output
    assert isinstance(out, CogFile)
    assert out.filename == "echo.md"
    assert out.content_type == "text/markdown"
    assert out.read_bytes() == b"# hello file"
    assert result.logs == "writing 12 characters\n"
    assert rec.of("output") == []  # not an iterator: only the final output
    assert rec.types == ["start", "logs", "completed"]


def test_streamed_files_keep_their_order(tmp_path: Path) -> None:
    model = register_cog_dir("acme/frames", FRAMES_DIR)
    assert model.output_schema["items"] == {"type": "string", "format": "uri"}
    worker = CogWorker(model, idle_timeout=None)
    try:
        rec = Recorder()
        result = worker.predict("frames-1", {"n": 8}, rec)
        assert result.status == "succeeded", result
        assert [f.read_bytes() for f in result.output] == [f"frame {i}".encode() for i in range(8)]
        assert [f.filename for f in result.output] == [f"output-{i}.txt" for i in range(8)]
        chunks = rec.of("output")
        assert len(chunks) == 8 and all(a is b for a, b in zip(chunks, result.output, strict=True))
        worker.discard_outputs("frames-1")
        assert not result.output[0].path.exists()
    finally:
        worker.close()


def test_training_then_the_trained_version(tmp_path: Path, echo_model: CogModel) -> None:
    model = register_cog_dir("acme/greeter", TRAINABLE_DIR)
    assert model.train_ref == "train.py:train"
    schemas = model.schema["components"]["schemas"]
    assert schemas["TrainingInput"]["required"] == ["greeting"]
    assert schemas["TrainingOutput"]["properties"]["weights"]["format"] == "uri"
    assert "/trainings" in model.schema["paths"] and "/predictions" in model.schema["paths"]
    with pytest.raises(ValueError, match="no 'train' entry"):
        CogWorker(echo_model, mode="train")

    trainer = CogWorker(model, mode="train", idle_timeout=None)
    try:
        bad = trainer.predict("train-bad", {"greeting": "x", "epochs": 9})
        assert bad.error == "Invalid input: epochs: 9 is greater than the maximum of 3"
        rec = Recorder()
        result = trainer.predict("train-1", {"greeting": "howdy", "epochs": 2}, rec)
        assert result.status == "succeeded", result
        assert result.logs == "epoch 0\nepoch 1\n"
        weights = result.output["weights"]
        assert isinstance(weights, CogFile) and weights.read_bytes() == b"howdy"
        kept = tmp_path / "weights.txt"
        shutil.copy(weights.path, kept)
    finally:
        trainer.close()

    trained = trained_model(model, kept, destination="acme/greeter-howdy")
    assert trained.owner_name == "acme/greeter-howdy"
    assert trained.version_id not in (model.version_id,)
    assert trained_model(model, kept).version_id == trained.version_id  # stable
    worker = CogWorker(trained, idle_timeout=None)
    try:
        assert worker.predict("greet-1", {"text": "world"}).output == "howdy world"
    finally:
        worker.close()


def test_file_inputs_as_data_uri_and_local_path(file_worker: CogWorker, tmp_path: Path) -> None:
    result = file_worker.predict(
        "file-in-1", {"text": "a+", "source": "data:text/plain;base64,ZnJvbSB1cmk="}
    )
    assert result.status == "succeeded", result
    assert result.output.read_bytes() == b"a+from uri"
    local = tmp_path / "in.txt"
    local.write_text("from disk")
    result = file_worker.predict("file-in-2", {"text": "b+", "source": local})
    assert result.status == "succeeded", result
    assert result.output.read_bytes() == b"b+from disk"


def test_output_equals_a_direct_run_of_the_runtime(echo_worker: CogWorker) -> None:
    ours = echo_worker.predict("same-1", {"text": "d", "repeat": 4})
    direct = httpx.post(
        echo_worker.base_url + "/predictions", json={"input": {"text": "d", "repeat": 4}}
    ).json()
    assert direct["status"] == "succeeded"
    assert ours.output == direct["output"]
    assert ours.logs == direct["logs"]


def test_setup_failure_is_reported_with_logs(broken_model: CogModel) -> None:
    worker = CogWorker(broken_model, setup_retry_after=3600)
    try:
        with pytest.raises(CogSetupError) as info:
            worker.start()
        assert info.value.message == "Model setup failed: RuntimeError: weights are missing"
        # What setup() printed and its traceback (recorded by the entry module, since
        # coglet 0.23 can drop them when its worker exits), then the runtime's report.
        logs = info.value.logs
        assert logs.startswith("loading weights...\nTraceback (most recent call last):\n")
        assert 'raise RuntimeError("weights are missing")' in logs
        assert logs.rstrip().endswith("RuntimeError: weights are missing")
        assert worker.state == "setup_failed"
        assert worker.pid is None
        rec = Recorder()
        result = worker.predict("broken-1", {"text": "x"}, rec)
        assert result.status == "failed"
        assert result.error == "Model setup failed: RuntimeError: weights are missing"
        assert result.logs == info.value.logs
        assert rec.types == ["logs", "completed"]
        assert worker.starts == 1  # the failure is remembered, not retried at once
    finally:
        worker.close()


def test_worker_starts_lazily(echo_model: CogModel) -> None:
    worker = CogWorker(echo_model)
    assert worker.state == "stopped" and worker.pid is None and worker.starts == 0
    worker.close()


def test_idle_worker_stops_and_restarts_on_demand(file_worker: CogWorker) -> None:
    assert file_worker.predict("idle-1", {"text": "a"}).status == "succeeded"
    starts = file_worker.starts
    assert file_worker.wait_stopped(30), "idle worker did not stop"
    assert file_worker.pid is None and file_worker.state == "stopped"
    assert STOPS and STOPS[-1] == starts
    result = file_worker.predict("idle-2", {"text": "b"})
    assert result.status == "succeeded"
    assert result.output.read_bytes() == b"b"
    assert file_worker.starts == starts + 1


def test_worker_crash_fails_the_prediction_then_restarts(
    disposable_echo_worker: CogWorker, tmp_path: Path
) -> None:
    worker = disposable_echo_worker
    starts = worker.starts

    def kill() -> None:
        assert worker.pid is not None
        os.killpg(worker.pid, signal.SIGKILL)

    flag = tmp_path / "never"
    result = worker.predict(
        "crash-1", {"text": "c", "wait_for_file": str(flag)}, Recorder(on_first_output=kill)
    )
    assert result.status == "failed"
    assert result.error == "worker crashed"
    assert worker.wait_stopped(10)
    assert worker.crashes == 1
    assert worker.predict("crash-2", {"text": "again"}).output == ["again0"]
    assert worker.starts == starts + 2
    assert worker.crashes == 0  # reset by a successful prediction


def test_ignored_cancel_kills_the_runtime(
    disposable_echo_worker: CogWorker, tmp_path: Path
) -> None:
    worker = disposable_echo_worker  # cancel_grace=1.0
    worker.start()
    starts = worker.starts
    flag = tmp_path / "never"
    rec = Recorder(on_first_output=lambda: worker.cancel("stubborn-1"))
    result = worker.predict(
        "stubborn-1",
        {"text": "s", "repeat": 2, "wait_for_file": str(flag), "ignore_cancel": True},
        rec,
    )
    assert result.status == "canceled"
    assert result.output is None or result.output == ["s0"]
    assert rec.of("output") == ["s0"]
    assert worker.wait_stopped(10)
    assert worker.predict("stubborn-2", {"text": "fine"}).output == ["fine0"]
    assert worker.starts == starts + 1


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_runtime_does_not_outlive_a_killed_server(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    script = tmp_path / "server.py"
    script.write_text(
        "import sys\n"
        "from replicate.local.cog import CogWorker, register_cog_dir\n"
        f"worker = CogWorker(register_cog_dir('acme/file', {str(FILE_DIR)!r}))\n"
        "worker.start()\n"
        "print(worker.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    server = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    runtime_pid = int(server.stdout.readline())
    assert _alive(runtime_pid)
    server.kill()
    server.wait()
    deadline = time.monotonic() + 30
    while _alive(runtime_pid):  # waiting on a state: the supervisor ends the runtime group
        assert time.monotonic() < deadline, "the Cog runtime outlived its server"
        time.sleep(0.05)


def test_cancel_before_dispatch(echo_worker: CogWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancel that arrives while the worker is still starting ends the run at once."""
    orig_start = echo_worker.start
    calls: list[bool] = []

    def start_then_cancel() -> None:
        orig_start()
        calls.append(echo_worker.cancel("early-1"))

    monkeypatch.setattr(echo_worker, "start", start_then_cancel)
    rec = Recorder()
    result = echo_worker.predict("early-1", {"text": "x"}, rec)
    assert calls == [True]
    assert result.status == "canceled"
    assert result.output is None
    assert rec.types == ["completed"]


def test_pool_reuses_one_worker_per_version(echo_model: CogModel, file_model: CogModel) -> None:
    pool = CogWorkerPool(max_live=4, idle_timeout=None)
    try:
        assert pool.get(echo_model) is pool.get(echo_model)
        assert pool.get(file_model) is not pool.get(echo_model)
    finally:
        pool.stop_all()


@pytest.mark.parametrize(
    ("raw", "error", "detailed"),
    [
        ("Prediction failed: Prediction failed: ValueError: boom", "boom", "ValueError: boom"),
        ("Prediction failed: Generator iteration error: KeyError: 'x'", "'x'", "KeyError: 'x'"),
        ("Prediction failed: RuntimeError: ", "RuntimeError", "RuntimeError:"),
        ("Prediction failed: out of memory", "out of memory", "out of memory"),
        ("", "Prediction failed", ""),
    ],
)
def test_model_error_unwrapping(raw: str, error: str, detailed: str) -> None:
    assert model_error(raw) == (error, detailed)


def test_data_uri_decoding() -> None:
    assert decode_data_uri("data:text/plain;base64,aGk=") == (b"hi", "text/plain")
    assert decode_data_uri("data:,a%20b") == (b"a b", "text/plain")
    assert decode_data_uri("not-a-data-uri") is None


# ------------------------------------------------------------------ local server integration


def test_runs_through_the_local_servers_runner(
    echo_model: CogModel, echo_worker: CogWorker, tmp_path: Path
) -> None:
    """The adapter plugs a Cog worker into the server's callable runner: logs, chunks, cancel."""
    core_mod = pytest.importorskip("replicate.local.core")
    from replicate.local.cog import register_cog_model

    core = core_mod.Core(core_mod.ServerConfig(demo_models=False))
    worker = echo_worker
    completed: dict[str, threading.Event] = {}
    outputs: dict[str, threading.Event] = {}
    original = core.runner.on_change

    def on_change(pid: str, event: str) -> None:
        original(pid, event)
        if event == "completed":
            completed.setdefault(pid, threading.Event()).set()
        if event == "output":
            outputs.setdefault(pid, threading.Event()).set()

    core.runner.on_change = on_change
    try:
        vid = register_cog_model(core.registry, echo_model, worker)
        assert vid == echo_model.version_id
        version = core.registry.get_version(vid)
        assert version["openapi_schema"] == json.loads(json.dumps(echo_model.schema))
        assert version["cog_version"] == echo_model.cog_version

        row = core.create_prediction(
            account="local", version=version, input={"text": "hey", "repeat": 3}, origin="http://x"
        )
        pid = row["id"]
        assert completed.setdefault(pid, threading.Event()).wait(60)
        done = core.store.get_prediction(pid)
        assert done["status"] == "succeeded", done
        assert done["output"] == ["hey0", "hey1", "hey2"]
        assert done["logs"] == "chunk 0\nchunk 1\nchunk 2\n"

        flag = tmp_path / "never"
        outputs.clear()
        row = core.create_prediction(
            account="local",
            version=version,
            input={"text": "c", "repeat": 2, "wait_for_file": str(flag)},
            origin="http://x",
        )
        pid = row["id"]
        assert outputs.setdefault(pid, threading.Event()).wait(60)
        core.cancel_prediction(pid)
        assert completed.setdefault(pid, threading.Event()).wait(60)
        done = core.store.get_prediction(pid)
        assert done["status"] == "canceled"
        assert done["output"] == ["c0"]
    finally:
        core.stop()


def test_end_to_end_with_the_client(
    echo_model: CogModel, echo_worker: CogWorker, file_model: CogModel, file_worker: CogWorker
) -> None:
    """`--cog acme/echo=DIR` equivalent: the client runs, streams and validates a Cog model."""
    server_mod = pytest.importorskip("replicate.local.server")
    import replicate
    from replicate.exceptions import ReplicateError

    pool = CogWorkerPool(idle_timeout=None)
    # Serve through the module's already running workers (saves two runtime starts).
    pool._workers.update({echo_model.version_id: echo_worker, file_model.version_id: file_worker})
    with server_mod.LocalServer(demo_models=False) as server:
        models = pool.attach_all(
            server.core.registry, [f"acme/echo={ECHO_DIR}", f"acme/file={FILE_DIR}"]
        )
        assert [m.version_id for m in models] == [echo_model.version_id, file_model.version_id]
        client = replicate.Client(api_token=server.api_token, base_url=server.base_url)

        model = client.models.get("acme/echo")
        latest = model.latest_version
        assert latest is not None and latest.id == echo_model.version_id
        assert latest.openapi_schema == json.loads(json.dumps(echo_model.schema))

        assert list(client.run("acme/echo", input={"text": "hi", "repeat": 3})) == [
            "hi0",
            "hi1",
            "hi2",
        ]
        streamed = [str(e) for e in client.stream("acme/echo", input={"text": "s", "repeat": 2})]
        assert "".join(streamed) == "s0s1"

        with pytest.raises(ReplicateError) as info:
            client.predictions.create(model="acme/echo", input={"text": "x", "repeat": 99})
        assert info.value.status == 422
        assert "repeat" in json.dumps(info.value.body)

        out = client.run("acme/file", input={"text": "file body"})
        # A delivery URL of the local server (plain http, so the client leaves it a string).
        url = getattr(out, "url", out)
        assert str(url).startswith(server.base_url) and str(url).endswith("/echo.txt")
        assert httpx.get(str(url)).content == b"file body"
