"""``replicate batch`` as a user runs it: a summary, exit codes, resume after Ctrl-C."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from .conftest import CLI


def write_rows(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def test_batch_runs_a_jsonl_file_and_resumes_without_new_creates(cli: CLI, tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "prompts.jsonl", ["a", "b", "c"])
    first = cli("batch", "replicate/hello-world", str(rows))
    assert first.returncode == 0, first.stderr
    assert "3 rows: 3 succeeded, 0 failed" in first.stderr
    assert "Traceback" not in first.stderr
    results = tmp_path / "prompts.batch" / "results.jsonl"
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert [x["output"] for x in lines] == ["hello a", "hello b", "hello c"]
    again = cli("batch", "replicate/hello-world", str(rows), "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["succeeded"] == 3 and summary["requests"]["create"] == 0


def test_a_csv_is_typed_from_the_schema_and_outputs_go_to_the_output_dir(
    cli: CLI, tmp_path: Path
) -> None:
    (tmp_path / "rows.csv").write_text("text\nx\ny\n")
    done = cli("batch", "local-demo/make-file", "rows.csv", "-o", "files", "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name.split(".")[0] for p in (tmp_path / "files").glob("row-*")) == [
        "row-00000",
        "row-00001",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "inputs: no such file: missing.jsonl"),
        (["rows.txt"], "expected a .jsonl or .csv file"),
        (["rows.jsonl", "--shard", "0/2"], "shard: expected 1 <= i <= n"),
        (["rows.jsonl", "--shard", "x"], "shard: expected i/n"),
        (["rows.jsonl", "--concurrency", "0"], "expected a positive integer"),
        (["rows.jsonl", "--wait", "-3"], "expected a positive integer"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    cli: CLI, tmp_path: Path, args: list[str], message: str
) -> None:
    write_rows(tmp_path / "rows.jsonl", ["a"])
    (tmp_path / "rows.txt").write_text("a")
    done = cli("batch", "replicate/hello-world", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_failed_rows_give_exit_1_and_a_summary_by_error(
    cli: CLI, cli_server: Any, tmp_path: Path
) -> None:
    def picky(text: str) -> str:
        if text.startswith("bad"):
            raise ValueError("no bad rows please")
        return text

    cli_server.register("test/picky", picky)
    rows = write_rows(tmp_path / "rows.jsonl", ["ok", "bad1", "bad2"])
    done = cli("batch", "test/picky", str(rows))
    assert done.returncode == 1
    assert "3 rows: 1 succeeded, 2 failed" in done.stderr
    assert "2 x no bad rows please" in done.stderr


def test_ctrl_c_cancels_in_flight_and_prints_how_to_resume(
    cli: CLI, cli_server: Any, tmp_path: Path
) -> None:
    started = threading.Event()
    gate = threading.Event()

    def slow(text: str) -> str:
        started.set()
        gate.wait(60)
        return text

    cli_server.register("test/slow-batch", slow, concurrency=4)
    rows = write_rows(tmp_path / "rows.jsonl", ["a", "b"])
    proc = cli.popen("batch", "test/slow-batch", str(rows), "--wait", "1")
    try:
        assert started.wait(60)
        state = tmp_path / "rows.batch" / "state.jsonl"
        for _ in range(6000):
            if state.exists() and state.read_text().count('"type":"created"') == 2:
                break
            threading.Event().wait(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        gate.set()
        proc.kill()
    assert proc.returncode == 130
    assert "interrupted: 2 prediction(s) in flight canceled; resume with: replicate batch" in err
    assert "Traceback" not in err
    resumed = cli("batch", "test/slow-batch", str(rows))
    assert resumed.returncode == 0 and "2 rows: 2 succeeded" in resumed.stderr
