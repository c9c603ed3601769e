"""Batch runs: one prediction per input row, within the rate limits, resumable, exactly once.

``replicate.batch(ref, inputs, ...)`` (and ``await replicate.async_batch(...)``) runs a model on
every row of ``inputs`` (a ``.jsonl`` / ``.csv`` file or a list of dicts) and writes one line per
row to a results file as rows finish. How it works, and what each guarantee rests on, is in
docs/batch.md. In short:

- **Exactly once**: a state file beside the results records each create *before* it is sent and
  each prediction id as soon as it is known. A re-run with the same results path skips finished
  rows, waits on the predictions it already has, and reconciles creates whose answer was lost
  against the API's prediction list before creating anything again.
- **Within the limits**: creates and other requests are paced client-side (600 and 3,000 per
  minute by default), slowing down on 429s; waiting costs little: creates use ``Prefer: wait``,
  then statuses are learned 100 at a time from the prediction list, with single GETs only for
  stragglers.
- **Results**: ``results.jsonl`` lines hold ``row``, ``id``, ``status``, ``output`` (file outputs
  saved under ``output_dir`` and named by row), ``error``, ``predict_time`` and ``attempts``;
  the file is rewritten in row order when the batch ends.
"""

from __future__ import annotations

import asyncio
import math
import os
import pathlib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exceptions import ReplicateException

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "BatchError",
    "BatchProgress",
    "BatchResult",
    "BatchRow",
    "async_batch",
    "batch",
    "parse_shard",
]


class BatchError(ReplicateException):
    """A batch cannot start or go on: bad options, or a state file that does not fit the run."""


@dataclass
class BatchRow:
    """The outcome of one row."""

    row: int
    id: str | None
    status: str
    output: Any = None
    error: str | None = None
    predict_time: float | None = None
    attempts: int = 1

    def to_json(self) -> dict[str, Any]:
        """The row's line in the results file."""
        return {
            "row": self.row,
            "id": self.id,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "predict_time": self.predict_time,
            "attempts": self.attempts,
        }


@dataclass
class BatchProgress:
    """A snapshot for progress displays (passed to ``progress=`` callbacks)."""

    total: int
    succeeded: int
    failed: int
    running: int
    queued: int
    skipped: int
    requests: int
    requests_last_minute: int
    creates_per_minute: float
    requests_per_minute: float
    throttled: int
    elapsed: float

    @property
    def done(self) -> int:
        """Rows finished (succeeded or not), this run and earlier ones."""
        return self.succeeded + self.failed

    @property
    def rate(self) -> float:
        """Rows finished per second in this run."""
        finished = self.done - self.skipped
        return finished / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (None until a row has finished)."""
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None


@dataclass
class BatchResult:
    """What a batch did: every row's outcome and the cost of getting there."""

    rows: list[BatchRow]
    results_path: pathlib.Path
    state_path: pathlib.Path
    requests: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    elapsed: float = 0.0
    created: int = 0
    stopped: bool = False

    @property
    def succeeded(self) -> list[BatchRow]:
        """Rows whose prediction succeeded."""
        return [r for r in self.rows if r.status == "succeeded"]

    @property
    def failed(self) -> list[BatchRow]:
        """Rows that did not succeed (failed, canceled, aborted, or never created)."""
        return [r for r in self.rows if r.status != "succeeded"]

    @property
    def predict_time(self) -> float:
        """Total ``metrics.predict_time`` of the rows' predictions, in seconds."""
        return sum(r.predict_time or 0.0 for r in self.rows)

    @property
    def requests_per_prediction(self) -> float:
        """API requests this run spent per prediction it created (every attempt counted)."""
        return sum(self.requests.values()) / self.created if self.created else 0.0

    def failures_by_error(self) -> dict[str, int]:
        """How many rows failed with each error (most common first)."""
        counts = Counter((r.error or r.status).splitlines()[0][:200] for r in self.failed)
        return dict(counts.most_common())


ProgressCallback = Callable[[BatchProgress], None]


def parse_shard(value: Any) -> tuple[int, int] | None:
    """``"i/n"`` (1-based) or ``(i, n)`` -> ``(i, n)``; ``ValueError`` explains a bad one."""
    if value is None:
        return None
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
        if match is None:
            raise ValueError(f"shard: expected i/n such as 1/4, got {value!r}")
        value = (int(match.group(1)), int(match.group(2)))
    try:
        index, count = value
    except (TypeError, ValueError):
        raise ValueError(f"shard: expected i/n such as 1/4, got {value!r}") from None
    if not (isinstance(index, int) and isinstance(count, int)) or not 1 <= index <= count:
        raise ValueError(f"shard: expected 1 <= i <= n, got {index}/{count}")
    return index, count


def _positive(name: str, value: Any, *, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise TypeError(f"{name} must be a positive {'integer' if integer else 'number'}")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def batch(ref: Any, inputs: Any, **options: Any) -> BatchResult:
    """Run ``ref`` on every row of ``inputs``; see :func:`async_batch` for the options.

    Blocks until the batch ends. Ctrl-C cancels the predictions in flight (or leaves them
    running with ``detach=True``) and raises ``KeyboardInterrupt``; run the same call again to
    resume.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("batch() cannot run inside an event loop: use await async_batch(...)")
    return asyncio.run(async_batch(ref, inputs, **options))


async def async_batch(
    ref: Any,
    inputs: Any,
    *,
    client: Client | None = None,
    results: str | os.PathLike[str] = "results.jsonl",
    state: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    concurrency: int = 32,
    creates_per_minute: float = 600,
    requests_per_minute: float = 3000,
    wait: int = 60,
    poll_interval: float = 1.0,
    max_attempts: int = 3,
    fail_fast: bool = False,
    retry_failed: bool = False,
    shard: str | tuple[int, int] | None = None,
    detach: bool = False,
    progress: ProgressCallback | None = None,
) -> BatchResult:
    """Run ``ref`` on every row of ``inputs``, resumably and exactly once (docs/batch.md).

    Args:
        ref: ``"owner/name"``, ``"owner/name:version"`` or a 64-character version id.
        inputs: A ``.jsonl`` or ``.csv`` path (CSV cells typed from the model's schema), or an
            iterable of input dicts. Local file paths in file inputs are uploaded once each.
        client: The client to use (default: ``replicate.default_client``'s settings).
        results: The results file (JSON lines, one per row, in row order at the end).
        state: The state file (default: ``<results>`` with ``.state.jsonl``). Keep it to resume.
        output_dir: Where file outputs are saved, named by row (default: not downloaded).
        concurrency: Predictions in flight at once.
        creates_per_minute / requests_per_minute: Client-side rate limits (the API's: 600 and
            3,000); they adapt down on 429 answers.
        wait: Seconds each create waits for the prediction to finish (``Prefer: wait``, 1-60).
        poll_interval: Seconds between bulk status checks of unfinished predictions.
        max_attempts: Attempts per row when a prediction is ``aborted`` (it never ran).
        fail_fast: Stop at the first failed row (in-flight predictions are canceled).
        retry_failed: Run again the rows that did not succeed in an earlier run.
        shard: ``"i/n"``: only the rows whose index is ``i - 1`` modulo ``n``.
        detach: On cancellation, leave in-flight predictions running (a re-run waits on them).
        progress: Called with a :class:`BatchProgress` whenever a row changes state.
    """
    _positive("concurrency", concurrency, integer=True)
    _positive("creates_per_minute", creates_per_minute)
    _positive("requests_per_minute", requests_per_minute)
    _positive("poll_interval", poll_interval)
    _positive("max_attempts", max_attempts, integer=True)
    if isinstance(wait, bool) or not isinstance(wait, int) or not 1 <= wait <= 60:
        raise ValueError(f"wait must be an integer number of seconds from 1 to 60, got {wait!r}")
    shard_spec = parse_shard(shard)
    results_path = pathlib.Path(results).expanduser()
    state_path = (
        pathlib.Path(state).expanduser()
        if state is not None
        else results_path.with_name(results_path.stem + ".state.jsonl")
    )
    out_dir = pathlib.Path(output_dir).expanduser() if output_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    if client is None:
        import replicate

        client = replicate.default_client
    from ._batch_client import metered_client
    from ._batch_engine import Run
    from ._pacing import Pacer

    pacer = Pacer(creates_per_minute, requests_per_minute)
    api = metered_client(client, pacer, concurrency)
    try:
        run = Run(
            api,
            pacer,
            results_path=results_path,
            state_path=state_path,
            output_dir=out_dir,
            concurrency=concurrency,
            wait=wait,
            poll_interval=poll_interval,
            max_attempts=max_attempts,
            fail_fast=fail_fast,
            retry_failed=retry_failed,
            detach=detach,
            progress=progress,
        )
        return await run.run(ref, inputs, shard_spec)
    finally:
        await api.aclose()


def rows_of(result: BatchResult) -> Iterable[dict[str, Any]]:
    """The results as plain dicts (what the results file holds)."""
    return (row.to_json() for row in result.rows)
