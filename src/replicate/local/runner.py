"""Prediction lifecycle: per-version FIFO queues, worker threads, cancel, deadlines, logs.

States: ``starting -> processing -> succeeded | failed | canceled`` and
``starting -> canceled | aborted | failed``. Every change is written to the store (deferred:
what a run writes is committed with its end, in one transaction; see ``store``), appended to
the prediction's SSE event log (when it has ``urls.stream``) and reported through
``on_change``. Inline models (``ModelImpl.inline``) run in the thread that starts them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import math
import shutil
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from .capture import capturing, run_tmpdir
from .capture import prediction_tempdir as prediction_tempdir  # documented here too
from .controls import Outcome, Scripts
from .fetch import FETCH_TIMEOUT, OwnAddress, input_file_path
from .files import FileService
from .inline import InlineRuns
from .registry import ModelImpl, Registry
from .run_controls import RunControls
from .schema import output_is_iterator, schema_facts
from .store import Store
from .util import Clock

log = logging.getLogger("replicate.local")

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
MAX_QUEUE_DEPTH = 1000
LOG_LIMIT = 4 * 1024 * 1024
CANCEL_GRACE = 10.0
INTERRUPTED_ERROR = "Prediction interrupted: the local server stopped while it was running"


class OutputError(ValueError):
    """A model's output cannot be stored and served back as strict JSON."""


class QueueFull(Exception):
    """The version's queue holds MAX_QUEUE_DEPTH predictions already."""


class NotActive(Exception):
    """A lifecycle control named a prediction that is terminal (or not run by this server)."""


#: Guards the first making of a run's cancel event (see ``Run.cancel_event``).
_CANCEL_EVENT_LOCK = threading.Lock()


@dataclass(eq=False, slots=True)
class Run:
    """In-memory state of a prediction that has not finished yet."""

    pid: str
    version: str
    impl: ModelImpl
    created_at: float
    input: dict[str, Any]
    iterator: bool
    _cancel: threading.Event | None = None  # see cancel_event
    lock: threading.RLock = field(default_factory=threading.RLock)
    deadline: float | None = None
    status: str = "starting"
    started_at: float | None = None
    output: Any = None
    logs: str = ""
    partial_line: str = ""
    emitted: bool = False
    finished: bool = False
    timers: list[threading.Timer] = field(default_factory=list)
    tmpdir: Path | None = None
    thread: RunThread | None = None
    schema: dict[str, Any] | None = None  # the version's OpenAPI document, when known
    held: bool = False  # test control: not started / paused between chunks until released
    outcome: Outcome | None = None  # test control: scripted outcome
    slot: bool = False  # holds one of the version's concurrency slots
    thread_done: bool = True  # False while the model's thread runs (the slot stays taken)
    on_cancel: Callable[[], object] | None = None  # interrupts an async model's task
    stream: bool = True  # has urls.stream: its events are stored (nothing else reads them)

    @property
    def cancel_event(self) -> threading.Event:
        """Set when the prediction is to stop: made when first asked for (most runs end
        without anyone asking; making an event costs more than the rest of a run's state)."""
        event = self._cancel
        if event is None:
            with _CANCEL_EVENT_LOCK:
                event = self._cancel
                if event is None:
                    event = self._cancel = threading.Event()
        return event

    @property
    def cancelled(self) -> bool:
        """Whether the prediction was asked to stop (without making its event)."""
        event = self._cancel
        return event is not None and event.is_set()


class RunThread:
    """The thread side of one run: ``join`` waits until the model's thread is done with it.

    A model's thread that ends while its version has more predictions queued goes on with the
    next one (``Runner._start`` hands it over) instead of a new thread being started for it:
    that saves a thread start and its hand-offs per prediction. So the run's end, not the
    thread's, is what ``join`` waits for.
    """

    def __init__(self) -> None:
        self._done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        """Wait (at most ``timeout`` seconds) until the run's thread is done with it."""
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        """Whether the run's thread is still busy with it."""
        return not self._done.is_set()


#: The handle of every plain inline run: it ends before anyone can ask.
_ENDED = RunThread()
_ENDED._done.set()

# Per model thread: whether it is ending a run (and may take over the next one), and the
# run handed to it.
_worker = threading.local()

#: Seconds a model's thread with nothing to run waits for a new run before it ends.
IDLE_WORKER_SECONDS = 2.0
IDLE_THREAD_NAME = "replicate-local-idle"

_Job = tuple[Callable[["Run"], None], "Run", RunThread]


class _Idle:
    """A model's thread waiting for a run: ``Runner._start`` sets ``job`` and ``wake``."""

    __slots__ = ("job", "wake")

    def __init__(self) -> None:
        self.job: _Job | None = None
        self.wake = threading.Event()


def metrics_for(
    status: str, created: float, started: float | None, completed: float
) -> dict[str, float]:
    """``predict_time`` (when started) and ``total_time`` for a terminal prediction, in
    seconds to the microsecond, as the real API gives them."""
    m: dict[str, float] = {}
    if status != "aborted" and started is not None:
        m["predict_time"] = _to_microseconds(completed - started)
    m["total_time"] = _to_microseconds(completed - created)
    return m


def _to_microseconds(seconds: float) -> float:
    """``round(max(0.0, seconds), 6)`` but for exact halves, at a fraction of its cost."""
    return math.floor(max(0.0, seconds) * 1e6 + 0.5) / 1e6


class Runner(InlineRuns, RunControls):
    """Runs predictions of registered callables in worker threads (inline ones where they
    are started: see ``inline``)."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        files: FileService,
        clock: Clock,
        on_change: Callable[[str, str], None],
    ) -> None:
        self.store = store
        self.registry = registry
        self.files = files
        self.clock = clock
        self.on_change = on_change
        self._lock = threading.RLock()
        # Model threads waiting for a run (newest last): starting a run hands it to one of
        # them rather than starting a thread, which would make the caller wait for it.
        self._idle: list[_Idle] = []
        self._idle_lock = threading.Lock()
        self._queues: dict[str, deque[Run]] = {}
        self._running: dict[str, int] = {}
        self._runs: dict[str, Run] = {}
        self._closed = False
        self.max_queue_depth = MAX_QUEUE_DEPTH
        #: Seconds a cancelled model that takes a cancel event (or is a generator/coroutine)
        #: gets to stop before the prediction is forced to ``canceled``; its slot stays
        #: taken until its thread really ends.
        self.cancel_grace = CANCEL_GRACE
        self.fetch_timeout = FETCH_TIMEOUT
        self.own = OwnAddress()  # this server's addresses: nothing it fetches may target /_local
        self.scripts = Scripts()  # test controls: scripted outcomes per model
        self._hold_cond = threading.Condition()
        #: Inline ``async`` runs waiting while held: ``_wake_held`` sets their events.
        self.hold_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    # ------------------------------------------------------------------ events
    def _event(self, run_or_pid: Run | str, type_: str, data: Any) -> None:
        """Append an event to the prediction's stream (none without ``urls.stream``: no one
        can read it); committed with its next commit (the store's deferred writes: one
        transaction for what a model emits at once)."""
        if isinstance(run_or_pid, str):
            pid = run_or_pid
        elif run_or_pid.stream:
            pid = run_or_pid.pid
        else:
            return
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        self.store.append_event(pid, type_, payload, self.clock.now(), defer=True)

    # ------------------------------------------------------------------ submit
    def submit(
        self,
        pid: str,
        row: dict[str, Any] | None = None,
        version: dict[str, Any] | None = None,
    ) -> None:
        """Queue a freshly created prediction (status ``starting``); ``row`` and ``version``:
        its decoded row and its version's, when the caller has just read them."""
        if row is None:
            row = self.store.get_prediction(pid)
        if row is None:
            raise KeyError(pid)
        impl = self.registry.impl(row["version"])
        if impl is None:
            raise KeyError(f"no implementation for version {row['version']}")
        if impl.inline and impl.is_async:
            self._note_loop()
        if version is None or version.get("id") != row["version"]:
            version = self.registry.get_version(row["version"])
        run = Run(
            pid=pid,
            version=row["version"],
            impl=impl,
            created_at=row["created_at"],
            input=row["input"],
            iterator=bool(version and output_is_iterator(version["openapi_schema"])),
            deadline=row.get("deadline"),
            schema=version["openapi_schema"] if version else None,
            stream=bool(row["stream"]),
        )
        with self._lock:
            q = self._queues.get(run.version)
            if q is None:
                q = self._queues[run.version] = deque()
            if len(q) >= self.max_queue_depth:
                raise QueueFull()
            run.outcome = self.scripts.pop(row["model"])
            run.held = bool(run.outcome and run.outcome.hold)
            self._runs[pid] = run
            # An inline run that nothing is queued before starts now, without the queue: a
            # plain one ends before this returns (so it needs no deadline timer either).
            now = (
                not q
                and impl.inline
                and run.outcome is None
                and not self._closed
                and self._running.get(run.version, 0) < impl.concurrency
            )
            if now:
                self._running[run.version] = self._running.get(run.version, 0) + 1
                run.slot = True
            else:
                q.append(run)
        plain = now and not impl.is_async
        # A plain run started now has ended when it returns: no deadline to watch.
        if row.get("deadline") is not None and not plain:
            self._arm_deadline(run, row["deadline"])
        if plain and not run.held:
            self._run_plain(run, _ENDED)
        elif now:
            self._start(run)
        else:
            self._dispatch(run.version)

    def submit_run(self, run: Run) -> None:
        """Queue a prepared run in the FIFO queue ``run.version`` (trainings use their own
        queue key and callable); ``QueueFull`` when that queue is full."""
        with self._lock:
            q = self._queues.setdefault(run.version, deque())
            if len(q) >= self.max_queue_depth:
                raise QueueFull()
            q.append(run)
            self._runs[run.pid] = run
        if run.deadline is not None:
            self._arm_deadline(run, run.deadline)
        self._dispatch(run.version)

    def is_active(self, pid: str) -> bool:
        """Whether this runner holds the prediction, queued or running, not finished yet (its
        row is then not terminal; its end is notified after the row is stored)."""
        with self._lock:
            run = self._runs.get(pid)
        return run is not None and not run.finished

    def queue_depth(self, version: str) -> int:
        """Queued (not yet started) predictions of a version."""
        with self._lock:
            return len(self._queues.get(version, ()))

    def _arm_deadline(self, run: Run, deadline: float) -> None:
        t = threading.Timer(max(0.0, deadline - self.clock.now()), self._deadline_hit, (run,))
        t.daemon = True
        run.timers.append(t)
        t.start()

    def check_deadlines(self) -> None:
        """Apply deadlines that passed (after the virtual clock moved): queued first."""
        now = self.clock.now()
        with self._lock:
            runs = [r for r in self._runs.values() if r.deadline is not None and r.deadline <= now]
        runs.sort(key=lambda r: r.started_at is not None)
        for run in runs:
            self._deadline_hit(run)

    def _deadline_hit(self, run: Run) -> None:
        with self._lock:
            q = self._queues.get(run.version)
            queued = q is not None and run in q
            if queued and q is not None:
                q.remove(run)
        if queued:
            self._finish(run, "aborted")
        elif not run.finished:
            self._request_cancel(run)

    def _dispatch(self, version: str) -> None:
        to_start: list[Run] = []
        expired: list[Run] = []
        with self._lock:
            if self._closed:
                return
            q = self._queues.get(version)
            while q:
                run = next((r for r in q if not r.held or r.finished), None)
                if run is None:  # only held predictions are waiting
                    break
                limit = run.impl.concurrency
                if self._running.get(version, 0) >= limit:
                    break
                q.remove(run)
                if run.finished:
                    continue
                if run.deadline is not None and run.deadline <= self.clock.now():
                    expired.append(run)
                    continue
                self._running[version] = self._running.get(version, 0) + 1
                run.slot = True
                to_start.append(run)
        for run in expired:
            self._finish(run, "aborted")
        for run in to_start:
            self._start(run)

    def _start(self, run: Run) -> None:
        scripted = run.outcome is not None and run.outcome.replaces_model
        # A plain inline run ends here and now: no one can see it start (its end stores
        # ``started_at``), so its start is neither stored nor announced.
        inline = run.impl.inline and not scripted and not run.held
        plain = inline and not run.impl.is_async
        try:
            with run.lock:
                if run.finished:
                    return
                run.status = "processing"
                run.started_at = self.clock.now()
                if run.iterator:
                    run.output = []
                if not plain:
                    self.store.update_prediction(
                        run.pid,
                        status="processing",
                        started_at=run.started_at,
                        metrics={},
                        defer=True,
                    )
                run.thread_done = False
            if not plain:
                self.on_change(run.pid, "status")
            target = self._execute_scripted if scripted else self._execute
            handle = _ENDED if plain else RunThread()
            if inline and self._start_inline(run, handle):
                return  # never blocks: run here (or as a task on the loop), see ``inline``
            if getattr(_worker, "ending", False) and _worker.next is None:
                # A model's thread is ending a run of this version: it runs this one next.
                _worker.next = (target, run, handle)
            else:
                with self._idle_lock:
                    idle = self._idle.pop() if self._idle else None
                    if idle is not None:
                        idle.job = (target, run, handle)
                        idle.wake.set()
                if idle is None:
                    t = threading.Thread(
                        target=self._worker_loop,
                        args=(target, run, handle),
                        name=f"replicate-local-{run.pid}",
                        daemon=True,
                    )
                    t.start()
            run.thread = handle  # only once started: stop/reset may join it at any time
        except Exception as exc:
            # The model never ran (the store refused the update, no thread could start).
            log.exception("could not start prediction %s", run.pid)
            if run.thread is None:
                run.thread_done = True
            self._finish(run, "failed", error=f"the prediction could not start: {exc}")

    def _worker_loop(self, target: Callable[[Run], None], run: Run, handle: RunThread) -> None:
        """A model's thread: run ``run``, then any run handed over while ending it, then wait
        a little for a new one (``IDLE_WORKER_SECONDS``)."""
        current = threading.current_thread()
        job: _Job | None = (target, run, handle)
        while job is not None:
            target, run, handle = job
            current.name = f"replicate-local-{run.pid}"
            _worker.ending, _worker.next = False, None
            try:
                target(run)
            except Exception:  # the targets end their run on every path; a last safety net
                log.exception("the thread of prediction %s failed", run.pid)
            finally:
                handle._done.set()
                job, _worker.ending, _worker.next = _worker.next, False, None
            if job is None:
                current.name = IDLE_THREAD_NAME
                job = self._wait_for_job()

    def _wait_for_job(self) -> _Job | None:
        """Wait as an idle model thread for a run; ``None`` after a while or at shutdown."""
        idle = _Idle()
        with self._idle_lock:
            if self._closed:
                return None
            self._idle.append(idle)
        idle.wake.wait(IDLE_WORKER_SECONDS)
        with self._idle_lock:
            if idle.job is None and idle in self._idle:
                self._idle.remove(idle)
            return idle.job

    def _wake_idle(self) -> None:
        """Let the idle model threads end now (shutdown)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.wake.set()

    def _thread_ended(self, run: Run) -> None:
        """The model's thread is ending: drop its temp files, free its slot."""
        if run.tmpdir is not None:
            shutil.rmtree(run.tmpdir, ignore_errors=True)
        if not run.finished:  # every path finishes; this is the last safety net
            self._finish(run, "failed", error="the prediction ended without a result")
        run.thread_done = True
        if hasattr(_worker, "next"):  # in a model's thread (_worker_loop)
            _worker.ending = True  # a run this frees may be handed to this thread
        self._release_slot(run)

    def _release_slot(self, run: Run) -> None:
        """Give the run's concurrency slot back once it is finished AND its thread ended."""
        with self._lock:
            if not (run.slot and run.finished and run.thread_done):
                return
            run.slot = False
            self._running[run.version] = max(0, self._running.get(run.version, 1) - 1)
            if not self._queues.get(run.version):
                return  # nothing waits for the slot
        self._dispatch(run.version)

    # ------------------------------------------------------------------ execution
    def _execute(self, run: Run) -> None:
        try:
            with self._capturing(run):
                try:
                    self._run_model(run)
                except BaseException as exc:  # the model's thread must always end the run
                    self._wait_held(run)
                    self._end_after_error(run, exc)
        finally:
            self._thread_ended(run)

    def _capturing(self, run: Run) -> capturing:
        """What the model prints or logs meanwhile goes to the run's logs."""
        return capturing(run, lambda s: self._log_write(run, s))

    def _run_model(self, run: Run) -> None:
        kwargs = self._prepare(run)
        fn = run.impl.fn
        if run.impl.is_async and inspect.iscoroutinefunction(fn):
            result = self._run_coroutine(run, fn(**kwargs))
        else:
            result = fn(**kwargs)
        if inspect.isasyncgen(result):
            result = self._iterate_async(run, result)
        self._consume(run, result)

    def _consume(self, run: Run, result: Any) -> None:
        """Store what the model returned: emit an iterator's chunks, then finish."""
        if inspect.isgenerator(result) or (
            run.iterator
            and hasattr(result, "__iter__")
            and not isinstance(result, (str, bytes, dict))
        ):
            it = iter(result)
            try:
                while not (run.cancelled or run.finished):
                    try:
                        item = next(it)
                    except StopIteration:
                        break
                    if run.cancelled or run.finished:
                        break  # a cancelled model's chunks are dropped
                    self._wait_held(run)
                    self._emit_output(run, item)
            finally:
                close = getattr(it, "close", None)
                if close is not None and (run.cancelled or run.finished):
                    close()  # a cancelled generator is not iterated any further
            self._wait_held(run)
            self._end_after_chunks(run)
        elif run.cancelled:
            self._finish(run, "canceled")
        else:
            if run.held:
                self._wait_held(run)
            output = result if result.__class__ is str else self._convert(run, result, 0)
            self._finish(run, "succeeded", output=output)

    # The decisions the thread's and the task's ways of running a model share.
    def _end_after_error(self, run: Run, exc: BaseException) -> None:
        """End a run whose model raised: ``canceled`` if that was a cancel, else ``failed``."""
        if run.cancelled:
            self._finish(run, "canceled")
        else:
            self._finish(run, "failed", error=error_text(exc))

    def _end_after_chunks(self, run: Run) -> None:
        """End a run whose model's chunks are all stored (or that was cancelled meanwhile)."""
        self._finish(run, "canceled" if run.cancelled else "succeeded")

    def _run_coroutine(self, run: Run, coro: Any) -> Any:
        """Run an async model's coroutine; a cancel cancels its task."""
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(coro)
            run.on_cancel = lambda: loop.call_soon_threadsafe(task.cancel)
            if run.cancelled:
                task.cancel()
            return loop.run_until_complete(task)
        finally:
            run.on_cancel = None
            loop.close()

    def _iterate_async(self, run: Run, agen: Any) -> Iterator[Any]:
        """An async generator as a sync iterator (one item at a time, cancellable)."""
        loop = asyncio.new_event_loop()
        try:
            while True:
                task = loop.create_task(_anext(agen))
                run.on_cancel = functools.partial(loop.call_soon_threadsafe, task.cancel)
                if run.cancelled:
                    task.cancel()
                try:
                    item = loop.run_until_complete(task)
                except StopAsyncIteration:
                    return
                finally:
                    run.on_cancel = None
                yield item
        finally:
            try:
                loop.run_until_complete(agen.aclose())
            except BaseException:
                pass
            loop.close()

    def _prepare(self, run: Run) -> dict[str, Any]:
        doc = run.schema
        if doc is None:
            version = self.registry.get_version(run.version)
            doc = version["openapi_schema"] if version else {}
        facts = schema_facts(doc)
        files = facts.files
        impl = run.impl
        kwargs: dict[str, Any] = {}
        for name, p in facts.input_props.items():
            if name in run.input:
                value = run.input[name]
            elif "default" in p:
                value = p["default"]
            else:
                value = None
            if name in files and value is not None:
                value = (
                    [self._to_path(run, v) for v in value]
                    if files[name]
                    else self._to_path(run, value)
                )
            if name in impl.params or impl.accepts_kwargs:
                kwargs[name] = value
        if impl.accepts_kwargs:
            for k, v in run.input.items():
                kwargs.setdefault(k, v)
        if impl.accepts_cancel_event:
            kwargs["cancel_event"] = run.cancel_event
        return kwargs

    def _to_path(self, run: Run, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return input_file_path(
            self.files,
            value,
            run_tmpdir(run),
            owner=self.store_owner(run.pid),
            own=self.own,
            timeout=self.fetch_timeout,
        )

    def store_owner(self, pid: str) -> str | None:
        """The account a prediction belongs to (its uploads are the ones it may read)."""
        row = self.store.one("SELECT account FROM predictions WHERE id = ?", (pid,))
        return row["account"] if row else None

    def _convert(self, run: Run, value: Any, index: int) -> Any:
        """Turn a callable's output value into JSON, storing files."""
        if isinstance(value, PurePath):
            with open(value, "rb") as f:
                return self.files.store_output(run.pid, f, Path(value).name or f"output.{index}")
        if isinstance(value, (bytes, bytearray)):
            return self.files.store_output(run.pid, bytes(value), f"output.{index}.bin")
        if hasattr(value, "read") and callable(value.read):
            name = Path(getattr(value, "name", "") or f"output.{index}").name
            data = value.read()
            if isinstance(data, str):
                data = data.encode()
            return self.files.store_output(run.pid, data, name)
        if isinstance(value, (list, tuple)):
            return [self._convert(run, v, i) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {str(k): self._convert(run, v, index) for k, v in value.items()}
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        try:
            json.dumps(value)
            return value
        except TypeError:
            return str(value)

    def _emit_output(self, run: Run, item: Any) -> None:
        with run.lock:
            if run.finished:
                return
            # A token (a str) is stored as it is.
            value = (
                item if item.__class__ is str else self._convert(run, item, len(run.output or []))
            )
            problem = unstorable(value)
            if problem is not None:
                raise OutputError(problem)
            if not isinstance(run.output, list):
                run.output = []
            run.output.append(value)
            run.emitted = True
            # The list itself, not a copy per chunk (a long stream's chunks would cost O(n)
            # each): the store commits its latest state and copies it for every read.
            output = run.output
            if run.stream:  # the column and the event in one call
                payload = (
                    value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
                )
                self.store.append_event(
                    run.pid,
                    "output",
                    payload,
                    self.clock.now(),
                    defer=True,
                    fields={"output": output},
                )
            else:
                self.store.update_prediction(run.pid, output=output, defer=True)
        self.on_change(run.pid, "output")

    def _log_write(self, run: Run, text: str) -> None:
        if not text:
            return
        text = clean_text(text)
        with run.lock:
            if run.finished:
                return
            buf = run.partial_line + text
            lines = buf.split("\n")
            run.partial_line = lines.pop()
            if not lines:
                return
            last: str | None = None  # the last line kept: its event is stored with the column
            for line in lines:
                if len(run.logs) < LOG_LIMIT:
                    run.logs += line + "\n"
                    if last is not None:
                        self._event(run, "logs", last)
                    last = line
                elif not run.logs.endswith("[logs truncated]\n"):
                    run.logs += "[logs truncated]\n"
            if last is not None and run.stream:
                self.store.append_event(
                    run.pid, "logs", last, self.clock.now(), defer=True, fields={"logs": run.logs}
                )
            else:
                self.store.update_prediction(run.pid, logs=run.logs, defer=True)
        self.on_change(run.pid, "logs")

    # ------------------------------------------------------------------ finishing
    def _finish(
        self, run: Run, status: str, *, error: str | None = None, output: Any = ...
    ) -> bool:
        """End a run (once): store its terminal state and events, then free its slot.

        Never raises: output that cannot be stored as strict JSON ends it ``failed``, and a
        store that refuses the write gets a minimal ``failed`` row instead.
        """
        with run.lock:
            if run.finished:
                return False
            if output is not ...:
                problem = unstorable(output)
                if problem is not None:
                    status, error, output = "failed", problem, None
            if run.partial_line:
                run.logs += run.partial_line + "\n"
                line, run.partial_line = run.partial_line, ""
                self._safe_event(run, "logs", line)
            if output is not ...:
                run.output = output
            now = self.clock.now()
            try:
                self._store_terminal(run, status, error, now)
            except Exception as exc:
                log.exception("could not store the result of prediction %s", run.pid)
                status = "failed"
                run.output = None
                error = clean_text(f"the prediction's result could not be stored: {exc}")
                try:
                    self._store_terminal(run, status, error, now)
                except Exception:
                    log.exception("could not store the failure of prediction %s", run.pid)
            run.finished = True
            run.status = status
            if run.timers:
                for t in run.timers:
                    t.cancel()
        with self._lock:
            self._runs.pop(run.pid, None)
        try:
            self.on_change(run.pid, "completed")
        except Exception:
            log.exception("completion hooks of prediction %s failed", run.pid)
        if run.held:  # only a held run has anyone waiting for it to be released or to end
            self._wake_held()
        if run.thread_done:  # else its thread's end releases the slot
            self._release_slot(run)
        return True

    def _store_terminal(self, run: Run, status: str, error: str | None, now: float) -> None:
        was_started = run.started_at is not None
        started = run.started_at
        if status == "canceled" and not was_started:
            started = now
        error = clean_text(error) if error is not None else None
        fields: dict[str, Any] = {
            "status": status,
            "completed_at": now,
            "logs": run.logs,
            "output": run.output,
            "error": error,
            "metrics": metrics_for(status, run.created_at, started, now),
        }
        if started is not None:
            fields["started_at"] = started
        # The stream's closing events are stored before the terminal status, so anyone who
        # sees the prediction finished also finds its complete event log.
        if run.stream:
            if status == "succeeded" and not run.emitted and run.output is not None:
                self._event(run, "output", run.output)  # whole output of a non-iterator model
            if status == "failed":
                self._event(run, "error", {"detail": error or ""})
            done: dict[str, str] = {}
            if status in ("canceled", "aborted"):
                done = {"reason": "canceled"}
            elif status == "failed":
                done = {"reason": "error"}
            self._event(run, "done", done)
        # Committed now, with what the run deferred, so that no one is told a prediction ended
        # before that survives a crash. An inline run's is committed with its neighbours'
        # (see ``Store.durable``): the answers that tell of it wait for that.
        self.store.update_prediction(run.pid, defer=run.impl.inline, **fields)

    def _safe_event(self, run: Run, type_: str, data: Any) -> None:
        try:
            self._event(run, type_, data)
        except Exception:
            log.exception("could not store a %s event of prediction %s", type_, run.pid)

    # ------------------------------------------------------------------ cancel
    def cancel(self, pid: str) -> bool:
        """Cancel a prediction; False if it is not active (terminal or unknown)."""
        with self._lock:
            run = self._runs.get(pid)
            if run is None:
                return False
            q = self._queues.get(run.version)
            queued = q is not None and run in q
            if queued and q is not None:
                q.remove(run)
        if queued:
            self._finish(run, "canceled")
        else:
            self._request_cancel(run)
        return True

    def _request_cancel(self, run: Run) -> None:
        run.cancel_event.set()
        self._wake_held()
        interrupt = run.on_cancel
        if interrupt is not None:
            try:
                interrupt()
            except RuntimeError:  # its event loop just closed
                pass
        scripted = run.outcome is not None and run.outcome.replaces_model
        fn = run.impl.fn
        cooperative = not scripted and (
            run.impl.accepts_cancel_event
            or inspect.isgeneratorfunction(fn)
            or inspect.iscoroutinefunction(fn)
            or inspect.isasyncgenfunction(fn)
        )
        if not cooperative:
            # Nothing can stop it: the API says canceled now, its slot stays taken until
            # its thread ends.
            self._finish(run, "canceled")
            return
        # Forced after the grace period even if the model ignores the request.
        t = threading.Timer(self.cancel_grace, self._finish, (run, "canceled"))
        t.daemon = True
        run.timers.append(t)
        t.start()

    def cancel_all(self, grace: float = 1.0) -> None:
        """Cancel every queued and running prediction; wait up to ``grace`` seconds in total."""
        with self._lock:
            runs = list(self._runs.values())
        self._cancel_and_wait(runs, grace)

    def _cancel_and_wait(self, runs: list[Run], grace: float) -> None:
        import time

        for run in runs:
            self.cancel(run.pid)
        deadline = time.monotonic() + grace
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=max(0.0, deadline - time.monotonic()))
            self._finish(run, "canceled")

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, grace: float | None = None) -> None:
        """Cancel everything (queued and running end ``canceled``) within ``grace`` seconds
        (default: the cancel grace period)."""
        if grace is None:
            grace = self.cancel_grace
        with self._lock:
            self._closed = True
            runs = list(self._runs.values())
        self._wake_idle()
        self._cancel_and_wait(runs, grace)

    def abandon(self) -> None:
        """Stop dispatching without touching predictions (simulates a crash)."""
        with self._lock:
            self._closed = True
            for run in self._runs.values():
                run.finished = True
                run.cancel_event.set()
                for t in run.timers:
                    t.cancel()
        self._wake_idle()


async def _anext(agen: Any) -> Any:
    return await agen.__anext__()


def error_text(exc: BaseException) -> str:
    """A one-line message for an exception that ended a prediction."""
    if isinstance(exc, asyncio.CancelledError):
        return "the model's task was cancelled"
    return clean_text(str(exc) or type(exc).__name__)


def clean_text(text: str) -> str:
    """``text`` as storable UTF-8: lone surrogates become ``?``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be stored and served as strict JSON (None when it can)."""
    if isinstance(value, str):  # a token: the JSON text is only needed to find surrogates
        try:
            value.encode("utf-8")
            return None
        except UnicodeEncodeError:
            return "the model's output cannot be stored as JSON: lone UTF-16 surrogate"
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        reason = "lone UTF-16 surrogate" if isinstance(exc, UnicodeEncodeError) else str(exc)
        return f"the model's output cannot be stored as JSON: {reason}"
    return None


def recover(store: Store, now: float, live_instances: set[str] | None = None) -> list[str]:
    """Finish predictions left unfinished by a stop; returns their ids.

    ``processing`` becomes ``failed`` (interrupted) and ``starting`` becomes ``aborted``.
    Predictions owned by a server instance in ``live_instances`` (another process using the
    same database) are left alone.
    """
    live = live_instances or set()
    rows = [
        r
        for r in store.query(
            "SELECT id, status, created_at, started_at, instance FROM predictions "
            "WHERE status IN ('starting', 'processing')"
        )
        if r["instance"] is None or r["instance"] not in live
    ]
    out: list[str] = []
    for row in rows:
        if row["status"] == "processing":
            store.update_prediction(
                row["id"],
                status="failed",
                error=INTERRUPTED_ERROR,
                completed_at=now,
                metrics=metrics_for("failed", row["created_at"], row["started_at"], now),
            )
            store.append_event(row["id"], "error", json.dumps({"detail": INTERRUPTED_ERROR}), now)
            store.append_event(row["id"], "done", json.dumps({"reason": "error"}), now)
        else:
            store.update_prediction(
                row["id"],
                status="aborted",
                completed_at=now,
                metrics=metrics_for("aborted", row["created_at"], None, now),
            )
            store.append_event(row["id"], "done", json.dumps({"reason": "canceled"}), now)
        out.append(row["id"])
    return out
