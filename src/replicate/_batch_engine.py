"""The engine of a batch run: rows, the journal, creates, waiting and results.

``replicate.batch`` (batch.py) checks the options and builds a :class:`Run`; what each step
guarantees is in docs/batch.md.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._batch_inputs import file_inputs, input_properties, load_rows
from ._batch_state import Journal, RowState, canonical_sha, compact_results, replay
from ._pacing import Pacer
from .batch import BatchError, BatchProgress, BatchResult, BatchRow

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Run"]

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")
#: How far before a lost create's intent (client clock) the prediction list is searched when no
#: server time is known yet: a margin for the skew between the two clocks.
RECONCILE_MARGIN = 600.0
#: A lost create was made after every prediction whose answer came before its intent; it is
#: searched from the newest such ``created_at`` (server clock) less this margin, for hosts whose
#: clocks differ a little.
SERVER_CLOCK_MARGIN = 10.0
#: Lost-answer creates retried per row before the row is reported failed.
MAX_UNCERTAIN = 3
_THROTTLED = "throttled"


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


class Run:
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
        known = [_parse_time(r.created_at) for r in replayed.rows.values()]
        self.server_now = max((t for t in known if t is not None), default=None)
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
        after = None if self.server_now is None else self.server_now - SERVER_CLOCK_MARGIN
        lost = False
        try:
            self.journal.write(
                {
                    "type": "create",
                    "row": index,
                    "attempt": attempt,
                    "at": intent_at,
                    "after": after,
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
                await self._settle_lost(index, attempt, sent_sha, intent_at, after)

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
            self.server_now = max(self.server_now or created_at, created_at)

    async def _settle_lost(
        self, index: int, attempt: int, sent_sha: str, intent_at: float, after: float | None
    ) -> None:
        """A create whose answer was lost: find its prediction in the list, or record none."""
        try:
            await self._until(lambda: not self.creating[sent_sha])
            async with self.reconcile_lock:
                state = self.replayed.row(index)
                state.sent_sha, state.intent_at, state.attempt = sent_sha, intent_at, attempt
                state.after = after
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
        since = min(
            s.after if s.after is not None else (s.intent_at or time.time()) - RECONCILE_MARGIN
            for s in states
        )
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
