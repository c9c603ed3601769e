"""``replicate batch``: one prediction per row of a JSONL or CSV file (see docs/batch.md)."""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import shlex
import sys
from typing import Any

from ._display import Display
from ._errors import CLIError
from ._session import open_client

EXAMPLES = """Examples:
  replicate batch --local replicate/hello-world prompts.jsonl
  replicate batch stability-ai/sdxl prompts.csv -o images --concurrency 16
  replicate batch owner/model rows.jsonl --shard 1/4      # this machine's quarter of the rows
  replicate batch owner/model rows.jsonl --retry-failed   # run the failed rows again

Each line of a .jsonl file is one input object; a .csv file has one column per input (cells
typed from the model's schema, empty cells use the default). Results go to DIR/results.jsonl
as rows finish (DIR is -o, default <inputs>.batch/), file outputs to DIR named by row.
Re-run the same command to resume after Ctrl-C or a crash: finished rows are skipped and
predictions already created are waited on, never created twice.
exit codes: 0 every row succeeded, 1 some row failed, 2 bad arguments, 130 interrupted."""


def add_batch_command(sub: Any) -> argparse.ArgumentParser:
    """Register ``replicate batch`` on the top-level subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "batch",
        help="run a model on every row of a JSONL or CSV file",
        description="Run a model on every row of a JSONL or CSV file: paced to the API's rate "
        "limits, resumable, each row exactly once.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(handler=cmd_batch)
    p.add_argument("model", help="owner/name, owner/name:version or a version id")
    p.add_argument("inputs", help="a .jsonl or .csv file of inputs, one row per prediction")
    p.add_argument(
        "-o",
        "--output-dir",
        help="where results.jsonl, the state file and file outputs go (default: <inputs>.batch)",
    )
    p.add_argument(
        "--concurrency", type=_positive_int, default=32, help="predictions in flight (default 32)"
    )
    p.add_argument(
        "--creates-per-minute",
        type=_positive_int,
        default=600,
        help="pace creates to this rate (default 600, the API's limit)",
    )
    p.add_argument(
        "--requests-per-minute",
        type=_positive_int,
        default=3000,
        help="pace other requests to this rate (default 3000, the API's limit)",
    )
    p.add_argument(
        "--wait",
        type=_positive_int,
        default=60,
        help="seconds each create waits for its prediction (Prefer: wait, 1-60; default 60)",
    )
    p.add_argument("--shard", metavar="I/N", help="only rows whose index is I-1 modulo N")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failed row")
    p.add_argument(
        "--retry-failed", action="store_true", help="run again the rows that failed earlier"
    )
    p.add_argument(
        "--detach",
        action="store_true",
        help="on Ctrl-C leave predictions in flight running (a re-run waits on them)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--local",
        action="store_true",
        help="start a local Replicate server for this command (no token, no network)",
    )
    return p


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def cmd_batch(args: Any, display: Display) -> int:
    """Run the batch with a live progress line; print a summary; exit 1 if any row failed."""
    from replicate.batch import BatchError, async_batch, parse_shard

    inputs = pathlib.Path(args.inputs).expanduser()
    if not inputs.is_file():
        raise CLIError(f"inputs: no such file: {args.inputs}", 2)
    if inputs.suffix.lower() not in (".jsonl", ".ndjson", ".csv"):
        raise CLIError(f"inputs: expected a .jsonl or .csv file, got {inputs.name!r}", 2)
    try:
        shard = parse_shard(args.shard)
    except ValueError as exc:
        raise CLIError(str(exc), 2) from None
    out_dir = pathlib.Path(args.output_dir or f"{inputs.with_suffix('')}.batch").expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CLIError(f"output directory {out_dir}: cannot write there ({exc.strerror})") from None
    results = out_dir / "results.jsonl"
    view = _Live(display)
    with open_client(args, display) as client:
        from ._run import resolve_target

        # One quick look first: a wrong URL, token or model is one line now, not after the
        # batch's patient retries.
        resolve_target(client, args.model, args)
        try:
            with view:
                result = asyncio.run(
                    async_batch(
                        args.model,
                        inputs,
                        client=client,
                        results=results,
                        state=out_dir / "state.jsonl",
                        output_dir=out_dir,
                        concurrency=args.concurrency,
                        creates_per_minute=args.creates_per_minute,
                        requests_per_minute=args.requests_per_minute,
                        wait=min(args.wait, 60),
                        fail_fast=args.fail_fast,
                        retry_failed=args.retry_failed,
                        shard=shard,
                        detach=args.detach,
                        progress=view.update,
                    )
                )
        except KeyboardInterrupt:
            running = view.last.running if view.last else 0
            fate = "left running" if args.detach else "canceled"
            display.error(
                f"interrupted: {running} prediction(s) in flight {fate}; resume with: "
                f"{_command_line()}"
            )
            return 130
        except BatchError as exc:
            raise CLIError(str(exc), 2) from None
        except FileNotFoundError as exc:
            raise CLIError(str(exc), 2) from None
    return _summary(display, result, results, args.json)


def _command_line() -> str:
    return "replicate " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _summary(display: Display, result: Any, results: pathlib.Path, as_json: bool) -> int:
    failed = result.failed
    summary = {
        "rows": len(result.rows),
        "succeeded": len(result.succeeded),
        "failed": len(failed),
        "failures_by_error": result.failures_by_error(),
        "predict_time": round(result.predict_time, 3),
        "requests": result.requests,
        "requests_per_prediction": round(result.requests_per_prediction, 3),
        "throttled": result.throttled,
        "elapsed": round(result.elapsed, 3),
        "results": str(results),
        "stopped_early": result.stopped,
    }
    if as_json:
        display.json(summary)
    else:
        total_requests = sum(result.requests.values())
        lines = [
            f"{summary['rows']} rows: {summary['succeeded']} succeeded, {summary['failed']} failed"
            f" in {result.elapsed:.1f} s; predict time {result.predict_time:.1f} s",
            f"{total_requests} requests ({result.requests_per_prediction:.2f} per prediction "
            f"created), {result.throttled} throttled",
        ]
        for error, count in list(summary["failures_by_error"].items())[:10]:
            lines.append(f"  {count} x {error}")
        lines.append(f"results: {results}")
        for line in lines:
            display.err.print(line, markup=False, highlight=False)
    return 0 if not failed else 1


class _Live:
    """One live status line on stderr (a tty), updated as rows change state."""

    def __init__(self, display: Display) -> None:
        self.display = display
        self.last: Any = None
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Live:
        if not self.display.quiet and self.display.err.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                console=self.display.err,
            )
            self._task = self._progress.add_task("batch", total=None, status="starting")
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, progress: Any) -> None:
        self.last = progress
        if self._progress is None:
            return
        status = (
            f"failed {progress.failed} · running {progress.running} · queued {progress.queued}"
            f" · {progress.rate:.1f} rows/s · {progress.requests_last_minute} req/min"
            f" (limits {progress.creates_per_minute:g} creates, "
            f"{progress.requests_per_minute:g} other)"
        )
        self._progress.update(
            self._task, completed=progress.done, total=progress.total, status=status
        )
