"""Inline runs: models that never block run where they are started, not on a model thread.

A model registered with ``inline=True`` (docs/local-server.md, "Models") promises to return
at once or, if it is ``async``, to wait only by awaiting. Its predictions skip the hand-off
to a model thread and back (two thread switches, each of which may wait for the GIL while
the event loop is busy):

* a plain function or generator runs in the thread that starts it (a request's, on the
  event loop);
* an ``async`` function or async generator runs as a task on the server's event loop;
  cancelling the prediction cancels the task.

A run that is held, scripted (test controls) or has file inputs to fetch still goes to a
model thread, as does an ``async`` one started where no server loop is known.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import Run, Runner, RunThread

__all__ = ["InlineRuns", "TaskHandle"]


class TaskHandle:
    """``RunThread`` of a run that is a task on an event loop: ``join`` does not wait on the
    loop's own thread (the task could never end meanwhile) nor on a loop that stopped."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: int) -> None:
        self._done = threading.Event()
        self._loop = loop
        self._thread = thread

    def join(self, timeout: float | None = None) -> None:
        """Wait (at most ``timeout`` seconds) until the task is done with the run."""
        if threading.get_ident() == self._thread or not self._loop.is_running():
            return
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        """Whether the task is still busy with the run."""
        return not self._done.is_set()


class InlineRuns:
    """The ``Runner`` part that starts inline runs (a mixin: ``Runner`` has the rest)."""

    _loop: asyncio.AbstractEventLoop | None = None
    _loop_thread: int | None = None

    def _note_loop(self) -> None:
        """Remember the event loop a prediction was submitted from (the server's)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop is not self._loop:
            self._loop, self._loop_thread = loop, threading.get_ident()

    def _run_plain(self: Runner, run: Run, ended: RunThread) -> None:  # type: ignore[misc]
        """Run a plain inline model's prediction here and now (``Runner.submit`` gave it its
        slot; it is neither held nor scripted): what ``_start`` does for it, without its
        hand-offs, then ``_execute``. Its start is neither stored nor announced: it ends before
        anyone can see it (its end stores ``started_at``). ``ended``: the handle of a run whose
        thread is done."""
        run.status = "processing"
        run.started_at = self.clock.now()
        if run.iterator:
            run.output = []
        run.thread = ended
        run.thread_done = False
        self._execute(run)

    def _start_inline(self: Runner, run: Run, handle: RunThread) -> bool:  # type: ignore[misc]
        """Run ``run`` here (or as a task on the server's loop); False when a model thread
        must run it instead."""
        if not run.impl.is_async:
            run.thread = handle
            try:
                self._execute(run)
            finally:
                handle._done.set()
            return True
        loop, thread = self._loop, self._loop_thread
        if loop is None or thread is None or loop.is_closed():
            return False
        task_handle = TaskHandle(loop, thread)
        run.thread = task_handle  # type: ignore[assignment]
        if threading.get_ident() == thread:
            loop.create_task(self._execute_task(run, task_handle))
        else:
            loop.call_soon_threadsafe(
                lambda: loop.create_task(self._execute_task(run, task_handle))
            )
        return True

    async def _execute_task(self: Runner, run: Run, handle: TaskHandle) -> None:  # type: ignore[misc]
        """An ``async`` inline model's run, as a task on the server's loop."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        try:
            with self._capturing(run):
                if task is not None:
                    run.on_cancel = lambda: loop.call_soon_threadsafe(task.cancel)
                try:
                    if run.cancelled:
                        raise asyncio.CancelledError
                    result = run.impl.fn(**self._prepare(run))
                    if inspect.isasyncgen(result):
                        await self._consume_async(run, result)
                    else:
                        self._consume(run, await result)
                except BaseException as exc:  # the task must always end the prediction
                    await self._held(run)
                    self._end_after_error(run, exc)
                finally:
                    run.on_cancel = None
        finally:
            self._thread_ended(run)
            handle._done.set()

    async def _consume_async(self: Runner, run: Run, agen: Any) -> None:  # type: ignore[misc]
        """Emit an async generator's chunks, then finish (see ``Runner._consume``)."""
        try:
            async for item in agen:
                if run.cancelled or run.finished:
                    break  # a cancelled model's chunks are dropped
                if run.held:
                    await self._held(run)
                self._emit_output(run, item)
        finally:
            if run.cancelled or run.finished:
                await agen.aclose()  # a cancelled generator is not iterated any further
        await self._held(run)
        self._end_after_chunks(run)

    async def _held(self: Runner, run: Run) -> None:  # type: ignore[misc]
        """Wait without blocking the loop while the prediction is held (test controls)."""
        while run.held and not (run.finished or run.cancelled):
            waiter = asyncio.Event()
            self.hold_waiters.add((asyncio.get_running_loop(), waiter))
            try:
                if run.held and not (run.finished or run.cancelled):
                    await waiter.wait()
            finally:
                self.hold_waiters.discard((asyncio.get_running_loop(), waiter))
