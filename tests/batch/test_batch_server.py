"""Batch runs against the local server over real sockets (sync and async)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import replicate
from replicate.batch import BatchError, BatchResult
from replicate.local.server import LocalServer

pytest.importorskip("starlette")

FAST = {"creates_per_minute": 100_000, "requests_per_minute": 100_000, "poll_interval": 0.05}


class Gate:
    """A model that waits until the test opens its gate; it fails on ``text == "bad"``."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.broken = True

    def __call__(self, text: str) -> str:
        if not self.open.wait(60):
            raise RuntimeError("gate never opened")
        if text == "bad" and self.broken:
            raise ValueError("bad row")
        return text.upper()


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate()


@pytest.fixture(scope="module")
def server(gate: Gate) -> Iterator[LocalServer]:
    with LocalServer(test_controls=True) as s:
        s.register("test/upper", gate, concurrency=64)
        s.register("test/size", _size, concurrency=8)
        yield s


def _size(file: Path) -> int:
    return len(file.read_bytes())


@pytest.fixture
def client(server: LocalServer) -> replicate.Client:
    return replicate.Client(api_token=server.api_token, base_url=server.base_url)


@pytest.fixture(autouse=True)
def _clean(server: LocalServer, gate: Gate) -> Iterator[None]:
    gate.open.set()
    gate.broken = True
    server.faults.clear() if hasattr(server.faults, "clear") else None
    yield
    gate.open.set()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run_batch(mode: str, ref: str, inputs: Any, **options: Any) -> BatchResult:
    options = {**FAST, **options}
    if mode == "sync":
        return replicate.batch(ref, inputs, **options)
    return asyncio.run(replicate.async_batch(ref, inputs, **options))


def results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def journal(path: Path) -> list[dict[str, Any]]:
    """The state file's records; read while the batch writes, the last line may be half there."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return records


def server_predictions(server: LocalServer, model: str) -> list[dict[str, Any]]:
    assert server.core is not None
    return server.core.store.query(
        "SELECT id, status FROM predictions WHERE kind = 'prediction' AND model = ?", [model]
    )


def test_every_row_runs_once_and_results_are_in_row_order(
    mode: str, client: replicate.Client, tmp_path: Path
) -> None:
    rows = [{"text": f"row {i}"} for i in range(25)]
    out = tmp_path / "results.jsonl"
    seen: list[Any] = []
    result = run_batch(mode, "test/upper", rows, client=client, results=out, progress=seen.append)
    assert [r.status for r in result.rows] == ["succeeded"] * 25
    lines = results(out)
    assert [line["row"] for line in lines] == list(range(25))
    assert [line["output"] for line in lines] == [f"ROW {i}" for i in range(25)]
    assert all(line["attempts"] == 1 and line["predict_time"] is not None for line in lines)
    assert len({line["id"] for line in lines}) == 25
    # Prefer: wait finishes fast predictions inside their create: one request each, plus the
    # model lookup.
    assert result.created == 25 and result.requests == {"create": 25, "other": 1}
    assert seen[-1].done == 25 and seen[-1].queued == 0 and seen[-1].running == 0
    again = run_batch(mode, "test/upper", rows, client=client, results=out)
    assert again.created == 0 and again.requests == {"create": 0, "other": 1}
    assert len(again.succeeded) == 25 and len(results(out)) == 25


def test_lost_answers_and_429_storms_never_make_a_second_prediction(
    mode: str, server: LocalServer, client: replicate.Client, tmp_path: Path
) -> None:
    model = f"test/lost-{mode}"
    server.register(model, lambda text: text, concurrency=16)
    server.add_fault(operation="models.predictions.create", drop_response=True, probability=0.15)
    server.add_fault(
        operation="models.predictions.create", status=429, retry_after=0, probability=0.2
    )
    server.add_fault(operation="predictions.list", status=429, retry_after=0, probability=0.2)
    try:
        # Identical inputs in several rows: a lost answer must not adopt another row's prediction.
        rows = [{"text": f"t{i % 5}"} for i in range(150)]
        result = run_batch(mode, model, rows, client=client, results=tmp_path / "r.jsonl")
    finally:
        server.faults.clear()
    assert len(result.succeeded) == 150
    assert result.throttled > 0
    ids = [r.id for r in result.rows]
    assert len(set(ids)) == 150
    on_server = server_predictions(server, model)
    assert sorted(p["id"] for p in on_server) == sorted(ids)  # nothing unclaimed, nothing twice


def test_file_inputs_are_uploaded_once_per_content(
    mode: str, server: LocalServer, client: replicate.Client, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_bytes(b"12345")
    (tmp_path / "copy-of-a.txt").write_bytes(b"12345")
    (tmp_path / "b.txt").write_bytes(b"123")
    inputs = tmp_path / "rows.jsonl"
    inputs.write_text(
        "".join(
            json.dumps({"file": name}) + "\n"
            for name in ("a.txt", "b.txt", "copy-of-a.txt", "a.txt")
        )
    )
    server.clear_requests()
    result = run_batch(mode, "test/size", inputs, client=client, results=tmp_path / "r.jsonl")
    assert [r.output for r in result.rows] == [5, 3, 5, 5]
    uploads = [r for r in server.requests() if r["method"] == "POST" and r["path"] == "/v1/files"]
    assert len(uploads) == 2
    state = journal(tmp_path / "r.state.jsonl")
    assert len([r for r in state if r["type"] == "upload"]) == 2
    (tmp_path / "rows2.jsonl").write_text(json.dumps({"file": "missing.txt"}) + "\n")
    with pytest.raises(BatchError, match=r"missing\.txt"):
        run_batch(
            mode, "test/size", tmp_path / "rows2.jsonl", client=client, results=tmp_path / "x.jsonl"
        )


def test_file_outputs_are_saved_under_the_output_dir_named_by_row(
    mode: str, client: replicate.Client, tmp_path: Path
) -> None:
    rows = [{"text": "a"}, {"text": "b"}]
    result = run_batch(
        mode,
        "local-demo/make-file",
        rows,
        client=client,
        results=tmp_path / "r.jsonl",
        output_dir=tmp_path / "out",
    )
    paths = [Path(r.output) for r in result.rows]
    assert [p.name.split(".")[0] for p in paths] == ["row-00000", "row-00001"]
    assert all(p.parent == tmp_path / "out" and p.stat().st_size > 0 for p in paths)
    assert [r["output"] for r in results(tmp_path / "r.jsonl")] == [str(p) for p in paths]


def test_failures_are_reported_fail_fast_stops_and_retry_failed_reruns_only_them(
    mode: str, server: LocalServer, gate: Gate, client: replicate.Client, tmp_path: Path
) -> None:
    rows = [{"text": t} for t in ("a", "bad", "b", "bad", "c")]
    out = tmp_path / "r.jsonl"
    result = run_batch(mode, "test/upper", rows, client=client, results=out, concurrency=1)
    assert [r.status for r in result.rows] == [
        "succeeded",
        "failed",
        "succeeded",
        "failed",
        "succeeded",
    ]
    assert result.failures_by_error() == {"bad row": 2}
    gate.broken = False
    rerun = run_batch(mode, "test/upper", rows, client=client, results=out, retry_failed=True)
    assert rerun.created == 2
    assert [r.status for r in rerun.rows] == ["succeeded"] * 5
    assert [r["attempts"] for r in results(out)] == [1, 2, 1, 2, 1]
    gate.broken = True
    stopped = run_batch(
        mode,
        "test/upper",
        rows,
        client=client,
        results=tmp_path / "ff.jsonl",
        concurrency=1,
        fail_fast=True,
    )
    assert stopped.stopped and stopped.created == 2
    assert [r.status for r in stopped.rows] == ["succeeded", "failed"]


def test_waiting_uses_the_prediction_list_not_a_get_per_prediction(
    server: LocalServer, gate: Gate, client: replicate.Client, tmp_path: Path
) -> None:
    gate.open.clear()
    rows = [{"text": f"slow {i}"} for i in range(20)]
    server.clear_requests()
    state = tmp_path / "r.state.jsonl"
    threading.Thread(target=_open_when_created, args=(state, gate, 20), daemon=True).start()
    result = replicate.batch(
        "test/upper", rows, client=client, results=tmp_path / "r.jsonl", wait=1, **FAST
    )
    assert len(result.succeeded) == 20
    log = server.requests()
    single = [r for r in log if r["method"] == "GET" and r["path"].startswith("/v1/predictions/")]
    listed = [r for r in log if r["method"] == "GET" and r["path"] == "/v1/predictions"]
    assert single == [] and listed
    assert result.requests_per_prediction < 1 + (len(listed) + 1) / 20 + 0.01


def _open_when_created(state: Path, gate: Gate, count: int) -> None:
    """Open the gate once every create has answered (so the batch must poll for the rest)."""
    for _ in range(6000):
        if sum(r["type"] == "created" for r in journal(state)) >= count:
            break
        threading.Event().wait(0.01)
    gate.open.set()


@pytest.mark.parametrize("detach", [False, True])
def test_cancelling_a_batch_cancels_or_detaches_in_flight_and_resume_finishes(
    detach: bool, server: LocalServer, gate: Gate, client: replicate.Client, tmp_path: Path
) -> None:
    gate.open.clear()
    rows = [{"text": f"c{i}-{detach}"} for i in range(4)]
    out = tmp_path / "r.jsonl"

    async def interrupted() -> None:
        task = asyncio.ensure_future(
            replicate.async_batch(
                "test/upper", rows, client=client, results=out, wait=1, detach=detach, **FAST
            )
        )
        while (
            len([r for r in journal(out.with_name("r.state.jsonl")) if r["type"] == "created"]) < 4
        ):
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    first = {r["id"] for r in journal(out.with_name("r.state.jsonl")) if r["type"] == "created"}
    assert server.core is not None
    statuses = Counter(server.core.store.get_prediction(pid)["status"] for pid in first)
    if detach:
        assert statuses["canceled"] == 0
    else:
        assert statuses == {"canceled": 4}
    gate.open.set()
    resumed = replicate.batch("test/upper", rows, client=client, results=out, **FAST)
    assert [r.status for r in resumed.rows] == ["succeeded"] * 4
    assert resumed.created == (0 if detach else 4)
    assert ({r.id for r in resumed.rows} == first) is detach


def test_shards_are_disjoint_and_their_results_merge(
    client: replicate.Client, tmp_path: Path
) -> None:
    rows = [{"text": f"s{i}"} for i in range(10)]
    merged: dict[int, str] = {}
    for index in (1, 2, 3):
        result = replicate.batch(
            "test/upper",
            rows,
            client=client,
            results=tmp_path / f"shard{index}.jsonl",
            shard=f"{index}/3",
            **FAST,
        )
        for line in results(tmp_path / f"shard{index}.jsonl"):
            assert line["row"] % 3 == index - 1 and line["row"] not in merged
            merged[line["row"]] = line["output"]
        assert len(result.rows) == len(range(index - 1, 10, 3))
    assert merged == {i: f"S{i}" for i in range(10)}
    with pytest.raises(ValueError, match="shard"):
        replicate.batch(
            "test/upper", rows, client=client, results=tmp_path / "x.jsonl", shard="4/3"
        )


def test_a_state_file_of_another_batch_is_refused(client: replicate.Client, tmp_path: Path) -> None:
    rows = [{"text": "x"}, {"text": "y"}]
    out = tmp_path / "r.jsonl"
    replicate.batch("test/upper", rows, client=client, results=out, **FAST)
    with pytest.raises(BatchError, match="belongs to a batch of 'test/upper'"):
        replicate.batch("local-demo/make-file", rows, client=client, results=out, **FAST)
    with pytest.raises(BatchError, match="row 1 of the inputs changed"):
        replicate.batch(
            "test/upper", [{"text": "x"}, {"text": "z"}], client=client, results=out, **FAST
        )
    with pytest.raises(BatchError, match="3"):
        replicate.batch("test/upper", [*rows, {"text": "w"}], client=client, results=out, **FAST)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("concurrency", 0),
        ("concurrency", 1.5),
        ("creates_per_minute", -1),
        ("requests_per_minute", float("nan")),
        ("wait", 61),
        ("wait", True),
        ("max_attempts", 0),
    ],
)
def test_bad_options_are_refused_before_any_request(
    option: str, value: Any, tmp_path: Path
) -> None:
    with pytest.raises((TypeError, ValueError), match=option):
        replicate.batch(
            "test/upper", [{"text": "a"}], results=tmp_path / "r.jsonl", **{option: value}
        )
    assert not (tmp_path / "r.jsonl").exists()


def test_batch_inside_an_event_loop_points_at_async_batch(tmp_path: Path) -> None:
    async def inside() -> None:
        with pytest.raises(RuntimeError, match="async_batch"):
            replicate.batch("test/upper", [], results=tmp_path / "r.jsonl")

    asyncio.run(inside())
