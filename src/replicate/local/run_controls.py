"""The runner's test controls: scripted outcomes, hold and release, and finishing a
prediction from the test (emit, complete, fail, abort); see docs/local-server.md, "Test
controls". A mixin: ``Runner`` has the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .controls import Outcome
    from .runner import Run, Runner

__all__ = ["RunControls"]


class RunControls:
    """Test controls of ``Runner`` (scripted outcomes, hold/release, emit/complete/fail/abort)."""

    def _execute_scripted(self: Runner, run: Run) -> None:  # type: ignore[misc]
        """Play a scripted outcome instead of calling the model."""
        outcome = run.outcome
        assert outcome is not None
        try:
            self._play(run, outcome)
        except Exception as exc:  # a scripted output that cannot be stored
            from .runner import error_text

            self._finish(run, "failed", error=error_text(exc))
        finally:
            if outcome.manual and not run.finished:
                run.thread_done = True  # the test finishes it; nothing runs meanwhile
                self._release_slot(run)
            else:
                self._thread_ended(run)

    def _play(self: Runner, run: Run, outcome: Outcome) -> None:  # type: ignore[misc]
        self._wait_held(run)
        for line in outcome.logs:
            self._log_write(run, line + "\n")
        if outcome.manual:
            return  # the test emits, completes, fails or cancels it
        if outcome.error is not None:
            self._wait_held(run)
            self._finish(run, "failed", error=outcome.error)
            return
        if run.iterator and isinstance(outcome.output, list):
            for item in outcome.output:
                self._wait_held(run)
                if run.cancelled or run.finished:
                    break
                self._emit_output(run, item)
            self._wait_held(run)
            self._end_after_chunks(run)
            return
        self._wait_held(run)
        self._finish(run, "succeeded", output=self._convert(run, outcome.output, 0))

    def _wait_held(self: Runner, run: Run) -> None:  # type: ignore[misc]
        """Block the model's thread while the prediction is held (until release or cancel)."""
        if not run.held:
            return
        with self._hold_cond:
            self._hold_cond.wait_for(lambda: not run.held or run.finished or run.cancelled)

    def _wake_held(self: Runner) -> None:  # type: ignore[misc]
        with self._hold_cond:
            self._hold_cond.notify_all()
        for loop, waiter in list(self.hold_waiters):
            try:
                loop.call_soon_threadsafe(waiter.set)
            except RuntimeError:  # its loop closed
                self.hold_waiters.discard((loop, waiter))

    def _active_run(self: Runner, pid: str) -> Run:  # type: ignore[misc]
        with self._lock:
            run = self._runs.get(pid)
        if run is None or run.finished:
            from .runner import NotActive

            raise NotActive(pid)
        return run

    def _is_queued(self: Runner, run: Run) -> bool:  # type: ignore[misc]
        with self._lock:
            q = self._queues.get(run.version)
            return q is not None and run in q

    def hold(self: Runner, pid: str) -> str:  # type: ignore[misc]
        """Hold a prediction: a queued one is not started, a running one pauses before its
        next output chunk (or before finishing). Returns its status."""
        run = self._active_run(pid)
        run.held = True
        return run.status

    def release(self: Runner, pid: str) -> str:  # type: ignore[misc]
        """Release a held prediction; returns its status."""
        run = self._active_run(pid)
        run.held = False
        self._wake_held()
        self._dispatch(run.version)
        return run.status

    def emit(self: Runner, pid: str, *, output: Any = ..., log: str | None = None) -> None:  # type: ignore[misc]
        """Append an output chunk and/or log line to a processing prediction now.

        Raises NotActive for a finished prediction and ValueError before it starts.
        """
        run = self._active_run(pid)
        if run.status != "processing":
            raise ValueError(f"prediction {pid} has not started (status {run.status})")
        if log is not None:
            self._log_write(run, log if log.endswith("\n") else log + "\n")
        if output is not ...:
            self._emit_output(run, output)

    def _force_start(self: Runner, run: Run) -> None:  # type: ignore[misc]
        """Mark a queued run as started (for complete/fail from the test)."""
        with self._lock:
            q = self._queues.get(run.version)
            if q is None or run not in q:
                return
            q.remove(run)
            self._running[run.version] = self._running.get(run.version, 0) + 1
            run.slot = True
        with run.lock:
            run.status = "processing"
            run.started_at = self.clock.now()
            self.store.update_prediction(
                run.pid, status="processing", started_at=run.started_at, metrics={}, defer=True
            )
        self.on_change(run.pid, "status")

    def complete(self: Runner, pid: str, *, output: Any = ...) -> None:  # type: ignore[misc]
        """Finish a prediction as ``succeeded`` (with ``output``, else what it emitted so far)."""
        run = self._active_run(pid)
        self._force_start(run)
        value = self._convert(run, output, 0) if output is not ... else ...
        if self._finish(run, "succeeded", output=value):
            run.cancel_event.set()  # let a still-running model stop; its result is discarded
            self._wake_held()

    def fail(self: Runner, pid: str, error: str) -> None:  # type: ignore[misc]
        """Finish a prediction as ``failed`` with ``error``."""
        run = self._active_run(pid)
        self._force_start(run)
        if self._finish(run, "failed", error=error):
            run.cancel_event.set()
            self._wake_held()

    def abort(self: Runner, pid: str) -> None:  # type: ignore[misc]
        """End a prediction that has not started as ``aborted``.

        Raises ValueError when it is already processing (``aborted`` means never started).
        """
        run = self._active_run(pid)
        with self._lock:
            q = self._queues.get(run.version)
            queued = q is not None and run in q
            if queued and q is not None:
                q.remove(run)
        if not queued:
            raise ValueError(
                f"prediction {pid} is {run.status}: only a prediction that has not started can be aborted"
            )
        self._finish(run, "aborted")

    def active(self: Runner, pid: str) -> bool:  # type: ignore[misc]
        """Whether a prediction is queued or running here."""
        with self._lock:
            return pid in self._runs
