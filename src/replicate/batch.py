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
import contextlib
import datetime as _dt
import hashlib
import math
import os
import pathlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._batch_inputs import file_inputs, input_properties, load_rows
from ._batch_state import Journal, RowState, canonical_sha, compact_results, replay
from ._pacing import Pacer
from .exceptions import ReplicateException

if TYPE_CHECKING:
    import httpx

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

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")
#: How far before a lost create's intent the prediction list is searched (clock skew margin).
RECONCILE_MARGIN = 600.0
#: Lost-answer creates retried per row before the row is reported failed.
MAX_UNCERTAIN = 3
_THROTTLED = "throttled"
#: Attempts per request of the batch's client (at least; see _metered_client).
BATCH_MAX_ATTEMPTS = 30


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
    pacer = Pacer(creates_per_minute, requests_per_minute)
    api = _metered_client(client, pacer, concurrency)
    try:
        run = _Batch(
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


# ------------------------------------------------------------------------ requests, paced


def _metered_client(client: Client, pacer: Pacer, concurrency: int) -> Client:
    """A client with ``client``'s settings whose every attempt is paced and counted."""
    import httpx

    from .client import Client

    inner = client._async_transport or client._transport
    if inner is None:
        kwargs = client._transport_kwargs()
        kwargs.setdefault(
            "limits",
            httpx.Limits(max_connections=concurrency + 16, max_keepalive_connections=concurrency),
        )
        inner = httpx.AsyncHTTPTransport(**kwargs)
    headers = [(k, v) for k, v in client._headers]
    # A batch outlives storms of 429s and short outages: the same retry policy (creates are
    # still never re-sent when the API may have acted on them), with more attempts.
    retry = dict(client._retry) if isinstance(client._retry, dict) else {}
    retry["max_attempts"] = max(int(retry.get("max_attempts", 0)), BATCH_MAX_ATTEMPTS)
    return Client(
        api_token=client._api_token,
        base_url=client._base_url,
        timeout=client._timeout,
        poll_interval=client.poll_interval,
        retry=retry,
        async_transport=_MeteredTransport(inner, pacer),  # type: ignore[arg-type]
        headers=headers,
        **client._httpx_kwargs,
    )


class _MeteredTransport:
    """Sends through ``inner`` after the pacer's wait; tells the pacer every answer's status.

    It sits inside the client's retry transport, so retries are paced and counted too.
    """

    def __init__(self, inner: Any, pacer: Pacer) -> None:
        if not hasattr(inner, "handle_async_request"):
            raise TypeError(
                f"batch runs need an async transport; {type(inner).__name__} has none: pass "
                "Client(async_transport=...) (e.g. httpx.AsyncHTTPTransport())"
            )
        self._inner = inner
        self._pacer = pacer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        from ._retry import parse_retry_after

        category = self._pacer.category(request.method, request.url.path)
        delay = self._pacer.reserve(category)
        if delay > 0:
            await asyncio.sleep(delay)
        response = await self._inner.handle_async_request(request)
        retry_after = None
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        self._pacer.answered(category, response.status_code, retry_after)
        return response

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()


# ------------------------------------------------------------------------ the run


@dataclass
class _Target:
    model: str | None
    version: str | None
    schema: Any

    def matches(self, item: Mapping[str, Any]) -> bool:
        """Whether a listed prediction was made of this target."""
        if self.version is not None:
            return bool(item.get("version") == self.version)
        return bool(item.get("model") == self.model)


def _iso(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.timestamp()


class _Interrupted(Exception):
    pass


class _Batch:
    """One run of a batch: the rows, the journal, the in-flight predictions."""

    def __init__(self, api: Client, pacer: Pacer, **opts: Any) -> None:
        self.api = api
        self.pacer = pacer
        self.opts = opts
        self.started = time.monotonic()
        self.outcomes: dict[int, BatchRow] = {}
        self.inflight: dict[int, str | None] = {}  # row -> prediction id (None while creating)
        self.waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.created_at: dict[str, float] = {}
        self.created = 0
        self.skipped = 0
        self.succeeded = 0  # rows of self.outcomes that succeeded
        self.stop = False
        self.upload_locks: dict[str, asyncio.Lock] = {}
        # Lost-answer bookkeeping (see _create): creates in flight and lost answers per input.
        self.creating: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()
        self.adopted: dict[int, dict[str, Any] | None] = {}
        self.reconcile_lock = asyncio.Lock()
        self._change = asyncio.Event()

    # ----------------------------------------------------------------- setup

    async def run(self, ref: Any, inputs: Any, shard: tuple[int, int] | None) -> BatchResult:
        self.target = await self._resolve(ref)
        props = input_properties(self.target.schema)
        self.file_keys = file_inputs(props)
        rows, self.base_dir = load_rows(inputs, props)
        indices = [i for i in range(len(rows)) if shard is None or i % shard[1] == shard[0] - 1]
        self.total = len(indices)
        state_path: pathlib.Path = self.opts["state_path"]
        replayed = replay(state_path)
        source = pathlib.Path(inputs).name if isinstance(inputs, (str, os.PathLike)) else None
        self._check_header(replayed.header, ref, source, len(rows), shard)
        self.replayed = replayed
        self.claimed = replayed.claimed_ids
        self.journal = Journal(state_path)
        if replayed.header is None:
            self.journal.write(
                {
                    "type": "batch",
                    "ref": str(ref),
                    "inputs": source,
                    "rows": len(rows),
                    "shard": list(shard) if shard else None,
                    "at": time.time(),
                }
            )
        try:
            return await self._run(rows, indices)
        finally:
            self.journal.close()
            compact_results(self.opts["results_path"])

    def _check_header(
        self, header: dict[str, Any] | None, ref: Any, source: str | None, count: int, shard: Any
    ) -> None:
        if header is None:
            return
        where = self.opts["state_path"]
        if header.get("inputs") != source:
            raise BatchError(
                f"{where} belongs to a batch of {header.get('inputs') or 'in-memory rows'}, not "
                f"{source or 'in-memory rows'}: use another results path (or delete the state "
                "file to start over)"
            )
        if header.get("ref") != str(ref):
            raise BatchError(
                f"{where} belongs to a batch of {header.get('ref')!r}, not {str(ref)!r}: "
                "use another results path (or delete the state file to start over)"
            )
        if header.get("rows") != count:
            raise BatchError(
                f"{where} was written for {header.get('rows')} input rows, the inputs now have "
                f"{count}: use another results path (or delete the state file to start over)"
            )
        if (header.get("shard") or None) != (list(shard) if shard else None):
            raise BatchError(f"{where} was written for another --shard: {header.get('shard')}")

    async def _resolve(self, ref: Any) -> _Target:
        if not isinstance(ref, str):
            raise TypeError(
                f"ref must be 'owner/name', 'owner/name:version' or a version id, not {ref!r}"
            )
        if _VERSION_ID.match(ref):
            return _Target(None, ref, None)
        model, _, version = ref.partition(":")
        if model.count("/") != 1 or not all(model.split("/")):
            raise ValueError(f"ref: expected owner/name or owner/name:version, got {ref!r}")
        if version:
            found = await self.api.models.versions.async_get(model, version)
            return _Target(model, version, found.openapi_schema)
        got = await self.api.models.async_get(model)
        latest = got.latest_version
        schema = latest.openapi_schema if latest is not None else None
        if latest is None or getattr(got, "is_official", False):
            return _Target(model, None, schema)
        return _Target(model, latest.id, schema)

    # ----------------------------------------------------------------- the main loop

    async def _run(self, rows: list[dict[str, Any]], indices: list[int]) -> BatchResult:
        todo: list[tuple[int, dict[str, Any], RowState]] = []
        for index in indices:
            state = self.replayed.rows.get(index) or RowState(index)
            row_sha = canonical_sha(rows[index])
            if state.row_sha is not None and state.row_sha != row_sha:
                raise BatchError(
                    f"row {index} of the inputs changed since {self.opts['state_path']} was "
                    "written: use another results path (or delete the state file to start over)"
                )
            if state.done and not (self.opts["retry_failed"] and state.status != "succeeded"):
                self.skipped += 1
                self.outcomes[index] = self._previous(state)
                self.succeeded += state.status == "succeeded"
                continue
            todo.append((index, rows[index], state))
        await self._reconcile([state for _, _, state in todo if state.uncertain])
        slots = asyncio.Semaphore(self.opts["concurrency"])
        poller = asyncio.ensure_future(self._poll())
        tasks = [
            asyncio.ensure_future(self._row(slots, index, row, state)) for index, row, state in todo
        ]
        self._report()
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._interrupt(dict(self.inflight))
            self._report()  # the last snapshot: what was in flight when the batch stopped
            raise
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        return BatchResult(
            rows=[self.outcomes[i] for i in indices if i in self.outcomes],
            results_path=self.opts["results_path"],
            state_path=self.opts["state_path"],
            requests=dict(self.pacer.sent),
            throttled=self.pacer.throttles,
            elapsed=time.monotonic() - self.started,
            created=self.created,
            stopped=self.stop,
        )

    def _previous(self, state: RowState) -> BatchRow:
        return BatchRow(state.row, state.id, state.status or "failed", attempts=state.attempt)

    async def _row(
        self, slots: asyncio.Semaphore, index: int, row: dict[str, Any], state: RowState
    ) -> None:
        async with slots:
            if self.stop:
                return
            self.inflight[index] = state.id
            # On cancellation the entry stays: _interrupt cancels what was in flight.
            await self._drive(index, row, state)
            self.inflight.pop(index, None)
            self._report()

    async def _drive(self, index: int, row: dict[str, Any], state: RowState) -> None:
        """Create (or adopt) the row's prediction, wait for it, retry aborted ones, record."""
        lost = 0
        attempt = state.attempt
        prediction: dict[str, Any] | None = None
        pid = state.id if not state.done else None
        while True:
            if pid is None:
                attempt += 1
                sent = await self._prepare(row)
                outcome = await self._create(index, attempt, row, sent)
                if outcome == _THROTTLED:
                    attempt -= 1
                    continue
                if outcome is None:
                    outcome = self.adopted.pop(index, None)
                if isinstance(outcome, BatchRow):
                    self._finish_row(outcome)
                    return
                if outcome is None:  # the answer was lost and no prediction turned up
                    lost += 1
                    attempt -= 1
                    if lost >= MAX_UNCERTAIN:
                        self._finish_row(
                            BatchRow(
                                index,
                                None,
                                "failed",
                                error=f"the create's answer was lost {lost} times",
                                attempts=attempt,
                            )
                        )
                        return
                    continue
                assert isinstance(outcome, dict)
                prediction = outcome
                pid = str(prediction["id"])
            self.inflight[index] = pid
            await self.journal.sync()  # the id is on disk before the row waits on it
            self._report()
            if prediction is None or prediction.get("status") not in TERMINAL:
                prediction = await self._wait(pid, prediction)
            status = prediction.get("status")
            if status == "aborted" and attempt < self.opts["max_attempts"]:
                pid, prediction = None, None  # it never ran: try again
                continue
            await self._record(index, prediction, attempt)
            return

    # ----------------------------------------------------------------- creating

    async def _prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        """The input to send: local files in file inputs replaced by their upload URLs."""
        sent = dict(row)
        for key in self.file_keys & set(row):
            value = row[key]
            if isinstance(value, list):
                sent[key] = [await self._upload(item) for item in value]
            else:
                sent[key] = await self._upload(value)
        return sent

    async def _upload(self, value: Any) -> Any:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or re.match(r"^(https?://|data:)", value):
            return value
        path = pathlib.Path(value).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        if not path.is_file():
            raise BatchError(f"file input {value!r}: no such file ({path})")
        digest = await asyncio.to_thread(_sha256_file, path)
        lock = self.upload_locks.setdefault(digest, asyncio.Lock())
        async with lock:
            url = self.replayed.uploads.get(digest)
            if url is None:
                uploaded = await self.api.files.async_create(path)
                url = str((uploaded.urls or {}).get("get"))
                self.replayed.uploads[digest] = url
                self.journal.write({"type": "upload", "sha256": digest, "url": url})
        return url

    async def _create(
        self, index: int, attempt: int, row: dict[str, Any], sent: dict[str, Any]
    ) -> dict[str, Any] | BatchRow | str | None:
        """Send one create: the prediction, a row that could not be created, ``_THROTTLED``
        (nothing was made: try again), or None (the answer was lost; see ``self.adopted``).

        While a lost answer of some input is being reconciled, no create of the same input is
        sent, and the reconciliation waits until every create of that input in flight has its
        answer: a listed prediction is then either claimed by its row or the lost one's.
        """
        from .exceptions import ReplicateError

        sent_sha = canonical_sha(sent)
        await self._until(lambda: not self.lost[sent_sha])
        self.creating[sent_sha] += 1
        intent_at = time.time()
        lost = False
        try:
            self.journal.write(
                {
                    "type": "create",
                    "row": index,
                    "attempt": attempt,
                    "at": intent_at,
                    "row_sha": canonical_sha(row),
                    "sent_sha": sent_sha,
                }
            )
            await self.journal.sync()  # the intent is on disk before the create is sent
            try:
                prediction = await self._send_create(sent)
            except ReplicateError as exc:
                status = getattr(exc, "status", None) or 0
                if status == 429:  # still throttled after the client's retries: nothing made
                    self._not_created(index, attempt, "rate limited")
                    return _THROTTLED
                if not 400 <= status < 500:
                    lost = True
                    return None
                error = str(exc)  # refused: no prediction was made
                self._not_created(index, attempt, error)
                return BatchRow(index, None, "failed", error=error, attempts=attempt)
            except Exception as exc:
                if not _maybe_sent(exc):
                    self._not_created(index, attempt, str(exc))
                    raise
                lost = True
                return None
            self._created(index, attempt, prediction)  # claimed before anyone reconciles
            return prediction
        finally:
            if lost:
                self.lost[sent_sha] += 1
            self.creating[sent_sha] -= 1
            self._changed()
            if lost:
                await self._settle_lost(index, attempt, sent_sha, intent_at)

    def _not_created(self, index: int, attempt: int, error: str) -> None:
        self.journal.write(
            {"type": "not_created", "row": index, "attempt": attempt, "error": error}
        )

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._change.wait()

    async def _send_create(self, sent: dict[str, Any]) -> dict[str, Any]:
        target = self.target
        wait = self.opts["wait"]
        if target.version is not None:
            created = await self.api.predictions.async_create(
                version=target.version, input=sent, wait=wait
            )
        else:
            created = await self.api.models.predictions.async_create(
                str(target.model), input=sent, wait=wait
            )
        return _as_dict(created)

    def _created(self, index: int, attempt: int, prediction: Mapping[str, Any]) -> None:
        pid = str(prediction["id"])
        self.created += 1
        self.claimed.add(pid)
        self.replayed.row(index).ids.append(pid)
        self.journal.write(
            {
                "type": "created",
                "row": index,
                "attempt": attempt,
                "id": pid,
                "created_at": prediction.get("created_at"),
            }
        )
        created_at = _parse_time(prediction.get("created_at"))
        if created_at is not None:
            self.created_at[pid] = created_at

    async def _settle_lost(self, index: int, attempt: int, sent_sha: str, intent_at: float) -> None:
        """A create whose answer was lost: find its prediction in the list, or record none."""
        try:
            await self._until(lambda: not self.creating[sent_sha])
            async with self.reconcile_lock:
                state = self.replayed.row(index)
                state.sent_sha, state.intent_at, state.attempt = sent_sha, intent_at, attempt
                item = (await self._find_lost([state])).get(index)
                if item is None:
                    self._not_created(index, attempt, "answer lost, no prediction found")
                else:
                    self._created(index, attempt, item)
                self.adopted[index] = item
        finally:
            self.lost[sent_sha] -= 1
            self._changed()

    async def _reconcile(self, states: list[RowState]) -> None:
        """Before anything is created: settle the creates whose answers a crash lost."""
        if not states:
            return
        found = await self._find_lost(states)
        for state in states:
            item = found.get(state.row)
            if item is None:
                self.journal.write(
                    {
                        "type": "not_created",
                        "row": state.row,
                        "attempt": state.attempt,
                        "error": "not found in the prediction list on resume",
                    }
                )
                state.uncertain = False
                state.attempt -= 1  # the attempt never happened
                continue
            self._created(state.row, state.attempt, item)
            self.created -= 1
            state.id, state.uncertain = str(item["id"]), False

    async def _find_lost(self, states: list[RowState]) -> dict[int, dict[str, Any]]:
        """Match uncertain rows to listed predictions by target and sent input (each id once)."""
        since = min(s.intent_at or time.time() for s in states) - RECONCILE_MARGIN
        wanted: dict[str, list[RowState]] = {}
        for state in sorted(states, key=lambda s: s.row):
            wanted.setdefault(state.sent_sha or "", []).append(state)
        found: dict[int, dict[str, Any]] = {}
        candidates = [item async for item in self._listed(since) if self.target.matches(item)]
        for item in reversed(candidates):
            if item.get("id") in self.claimed:  # checked after the last await: claims are final
                continue  # oldest first: the first create gets the first id
            queue = wanted.get(canonical_sha(item.get("input")))
            if queue:
                found[queue.pop(0).row] = item
        return found

    async def _listed(self, since: float) -> Any:
        """Predictions created since ``since`` (unix seconds), newest first, as dicts."""
        page = await self.api.predictions.async_list(created_after=_iso(since))
        while True:
            for item in page.results:
                yield _as_dict(item)
            if not page.next:
                return
            page = await self.api.predictions.async_list(cursor=page.next)

    # ----------------------------------------------------------------- waiting

    async def _wait(self, pid: str, known: dict[str, Any] | None) -> dict[str, Any]:
        if known is None:  # resumed: learn its creation time (and maybe its end) first
            known = _as_dict(await self.api.predictions.async_get(pid))
            created_at = _parse_time(known.get("created_at"))
            if created_at is not None:
                self.created_at[pid] = created_at
            if known.get("status") in TERMINAL:
                return known
        future = self.waiters.get(pid)
        if future is None:
            future = self.waiters[pid] = asyncio.get_running_loop().create_future()
        try:
            return await future
        finally:
            self.waiters.pop(pid, None)

    async def _poll(self) -> None:
        """Learn the statuses of waiting predictions in bulk from the list, GETs for the rest."""
        while True:
            await asyncio.sleep(self.opts["poll_interval"])
            if not self.waiters:
                continue
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed poll is retried on the next tick
                continue

    async def _poll_once(self) -> None:
        waiting = set(self.waiters)
        known = [self.created_at[p] for p in waiting if p in self.created_at]
        seen: set[str] = set()
        if known:
            since = min(known) - 1.0
            budget = max(1, math.ceil(len(waiting) / 100) + 1)
            page = await self.api.predictions.async_list(created_after=_iso(since))
            while True:
                for item in page.results:
                    data = _as_dict(item)
                    pid = data.get("id")
                    if pid in waiting:
                        seen.add(pid)
                        self._settle(pid, data)
                budget -= 1
                if not page.next or budget <= 0 or seen >= waiting:
                    break
                page = await self.api.predictions.async_list(cursor=page.next)
        stragglers = sorted(waiting - seen, key=lambda p: self.created_at.get(p, 0.0))[:20]
        for pid in stragglers:
            self._settle(pid, _as_dict(await self.api.predictions.async_get(pid)))

    def _settle(self, pid: str, data: dict[str, Any]) -> None:
        future = self.waiters.get(pid)
        if future is not None and not future.done() and data.get("status") in TERMINAL:
            future.set_result(data)

    # ----------------------------------------------------------------- results

    async def _record(self, index: int, prediction: dict[str, Any], attempt: int) -> None:
        output = prediction.get("output")
        if self.opts["output_dir"] is not None and output is not None:
            output = await self._save_outputs(index, output)
        metrics = prediction.get("metrics") or {}
        predict_time = metrics.get("predict_time") if isinstance(metrics, dict) else None
        error = prediction.get("error")
        outcome = BatchRow(
            index,
            str(prediction.get("id")),
            str(prediction.get("status")),
            output=output,
            error=str(error) if error is not None else None,
            predict_time=float(predict_time) if isinstance(predict_time, (int, float)) else None,
            attempts=attempt,
        )
        self._finish_row(outcome)

    def _finish_row(self, outcome: BatchRow) -> None:
        import json

        with open(self.opts["results_path"], "a", encoding="utf-8") as fh:
            fh.write(json.dumps(outcome.to_json(), ensure_ascii=False) + "\n")
        self.journal.write(
            {"type": "done", "row": outcome.row, "id": outcome.id, "status": outcome.status}
        )
        self.outcomes[outcome.row] = outcome
        self.succeeded += outcome.status == "succeeded"
        if outcome.status != "succeeded" and self.opts["fail_fast"]:
            self.stop = True
        self._report()

    async def _save_outputs(self, index: int, output: Any) -> Any:
        from .helpers import FileOutput

        out_dir: pathlib.Path = self.opts["output_dir"]
        counter = [0]

        async def save(value: Any, many: bool) -> Any:
            if isinstance(value, list):
                return [await save(item, True) for item in value]
            if isinstance(value, dict):
                return {k: await save(v, True) for k, v in value.items()}
            if not isinstance(value, str) or not re.match(r"^(https?://\S+|data:)", value):
                return value
            suffix = _suffix(value)
            name = f"row-{index:05d}-{counter[0]}{suffix}" if many else f"row-{index:05d}{suffix}"
            counter[0] += 1
            path = out_dir / name
            await FileOutput(value, self.api).asave(path)
            return str(path)

        return await save(output, isinstance(output, (list, dict)))

    # ----------------------------------------------------------------- interruption

    async def _interrupt(self, inflight: dict[int, str | None]) -> None:
        """Cancel what is in flight (unless ``detach``): the rows run again on resume."""
        if self.opts["detach"]:
            return
        for index, pid in inflight.items():
            if pid is None:
                continue
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.api.predictions.async_cancel(pid), 10)
            self.journal.write({"type": "interrupted", "row": index, "id": pid})

    def _report(self) -> None:
        callback = self.opts["progress"]
        if callback is None:
            return
        succeeded = self.succeeded
        failed = len(self.outcomes) - succeeded
        running = sum(1 for pid in self.inflight.values() if pid is not None)
        queued = self.total - len(self.outcomes) - running
        callback(
            BatchProgress(
                total=self.total,
                succeeded=succeeded,
                failed=failed,
                running=running,
                queued=max(0, queued),
                skipped=self.skipped,
                requests=self.pacer.total,
                requests_last_minute=self.pacer.per_minute(),
                creates_per_minute=self.pacer.creates_per_minute,
                requests_per_minute=self.pacer.requests_per_minute,
                throttled=self.pacer.throttles,
                elapsed=time.monotonic() - self.started,
            )
        )


def _maybe_sent(exc: BaseException) -> bool:
    """Whether a failed create may have reached the API (its answer lost on the way back)."""
    import httpx

    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return False  # nothing was sent
    return isinstance(exc, (httpx.TransportError, asyncio.TimeoutError))


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dict(dump())
    return dict(obj.dict())


def _sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _suffix(url: str) -> str:
    from .helpers import file_name_from_url

    name = file_name_from_url(url)
    suffix = pathlib.PurePosixPath(name).suffix if name else ""
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,10}", suffix or "") else ""


def rows_of(result: BatchResult) -> Iterable[dict[str, Any]]:
    """The results as plain dicts (what the results file holds)."""
    return (row.to_json() for row in result.rows)
