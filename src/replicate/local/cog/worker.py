"""A Cog worker: predictions on one runtime process, the way the platform runs them.

Each prediction is sent as ``PUT /predictions/{id}`` with ``Prefer: respond-async`` and a
webhook pointing at the worker's :class:`~.callbacks.CallbackServer`. Webhook snapshots
become ordered :class:`CogEvent` objects (``start``, ``logs``, ``output`` chunks,
``completed``); files the runtime produces become :class:`CogFile` values.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

import httpx

from .callbacks import CallbackServer
from .errors import CogSetupError
from .events import (
    TERMINAL_STATUSES,
    WORKER_CRASHED,
    CogEvent,
    CogResult,
    EventCallback,
    Run,
)
from .process import RuntimeProcess

__all__ = ["CogWorker", "model_error", "runtime_error_message"]


class CogWorker(RuntimeProcess):
    """One Cog runtime process serving one model version.

    ``predict()`` starts the process on first use (``start()`` can be called eagerly), runs
    one prediction and reports :class:`CogEvent` objects to ``on_event`` in the calling
    thread, in order. The process stops after ``idle_timeout`` seconds without predictions,
    on :meth:`stop`, or when setup fails (the failure is kept for ``setup_retry_after``
    seconds, during which predictions fail at once with the same error and logs).
    Thread-safe: predictions may run concurrently up to ``model.concurrency``.
    """

    @property
    def is_iterator(self) -> bool:
        """True when this worker's output streams (``x-cog-array-type: iterator``)."""
        return self.output_schema.get("x-cog-array-type") == "iterator"

    @property
    def _endpoint(self) -> str:
        return "/trainings" if self.mode == "train" else "/predictions"

    def schema(self) -> dict[str, Any]:
        """The version's Cog OpenAPI document (store it as the version's ``openapi_schema``)."""
        return self.model.schema

    def predict(
        self,
        prediction_id: str,
        input: Mapping[str, Any],
        on_event: EventCallback | None = None,
    ) -> CogResult:
        """Run one prediction to the end and return how it ended.

        Events (``start``, ``logs``, ``output`` chunks for iterator outputs, then
        ``completed``) are delivered to ``on_event`` in this thread, in order. Setup
        failures, input the runtime rejects (422) and worker crashes become a ``failed``
        result rather than an exception. File outputs arrive as :class:`CogFile` values.
        Input values may be URLs or ``data:`` URIs (as on the API) or local files given as
        ``os.PathLike`` objects, which the worker serves to the runtime over loopback HTTP
        (a plain local path *string* is not turned into a file by the runtime).
        """
        run = Run(prediction_id, on_event)
        with self._lock:
            if prediction_id in self._runs:
                raise ValueError(f"prediction {prediction_id!r} is already running on this worker")
            self._runs[prediction_id] = run
            self._active += 1
            self._last_used = time.monotonic()
        try:
            return self._predict(run, dict(input))
        finally:
            with self._lock:
                self._runs.pop(prediction_id, None)
                self._active -= 1
                self._last_used = time.monotonic()
                self._idle_cond.notify_all()

    def cancel(self, prediction_id: str) -> bool:
        """Ask the runtime to cancel a running prediction; False if it is not running here.

        The prediction's ``predict()`` call then returns ``canceled`` with partial output.
        If the runtime ignores the cancel for ``cancel_grace`` seconds the process is
        killed (and restarted on demand).
        """
        with self._lock:
            run = self._runs.get(prediction_id)
            client = self._http
        if run is None:
            return False
        with run.cond:
            if run.cancel_requested_at is None:
                run.cancel_requested_at = time.monotonic()
            dispatched = run.dispatched
            run.cond.notify_all()
        if dispatched and client is not None:
            self._send_cancel(client, prediction_id)
        return True

    def _send_cancel(self, client: httpx.Client, prediction_id: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            client.post(
                f"{self._endpoint}/{urllib.parse.quote(prediction_id, safe='')}/cancel",
                timeout=5.0,
            )

    def _emit(self, run: Run, event: CogEvent) -> None:
        if run.on_event is not None:
            run.on_event(event)

    def _finish(self, run: Run, result: CogResult) -> CogResult:
        if len(result.logs) > len(run.logs) and result.logs.startswith(run.logs):
            self._emit(run, CogEvent("logs", result.logs[len(run.logs) :]))
            run.logs = result.logs
        elif len(result.logs) < len(run.logs):
            result.logs = run.logs
        run.done = True
        if result.status == "succeeded":
            self.crashes = 0
        self._emit(run, CogEvent("completed", result))
        return result

    def _predict(self, run: Run, input: dict[str, Any]) -> CogResult:
        try:
            self.start()
        except CogSetupError as exc:
            return self._finish(run, CogResult("failed", error=exc.message, logs=exc.logs))
        if run.cancel_requested_at is not None:
            return self._finish(run, CogResult("canceled"))

        failure = self._dispatch(run, input)
        if failure is not None:
            return self._finish(run, failure)

        while True:
            item = run.get(timeout=0.25)
            if item is None:
                result = self._check_stalled(run)
                if result is not None:
                    return self._finish(run, result)
                continue
            kind, payload = item
            if kind == "snapshot":
                result = self._apply_snapshot(run, payload)
                if result is not None:
                    return self._finish(run, result)
            elif kind == "crashed":
                if run.cancel_requested_at is not None:
                    return self._finish(run, CogResult("canceled", logs=run.logs))
                return self._finish(run, CogResult("failed", error=WORKER_CRASHED, logs=run.logs))
            elif kind == "stopped":
                return self._finish(
                    run,
                    CogResult(
                        "canceled" if run.cancel_requested_at is not None else "failed",
                        error=None
                        if run.cancel_requested_at is not None
                        else "The model worker was stopped while the prediction was running",
                        logs=run.logs,
                    ),
                )

    def _dispatch(self, run: Run, input: dict[str, Any]) -> CogResult | None:
        with self._lock:
            client, callbacks = self._http, self._callbacks
        if client is None or callbacks is None:
            return CogResult("failed", error=WORKER_CRASHED)
        body = {
            "id": run.id,
            "input": self._input_for_runtime(input, callbacks),
            "webhook": callbacks.webhook_url,
            "webhook_events_filter": ["start", "output", "logs", "completed"],
        }
        path = f"{self._endpoint}/{urllib.parse.quote(run.id, safe='')}"
        deadline = time.monotonic() + 30.0
        delay = 0.01
        while True:
            try:
                resp = client.put(path, json=body, headers={"Prefer": "respond-async"})
            except httpx.HTTPError as exc:
                if self.pid is None:
                    return CogResult("failed", error=WORKER_CRASHED)
                return CogResult("failed", error=f"Could not reach the Cog runtime: {exc}")
            if resp.status_code == 409 and time.monotonic() < deadline:
                # At capacity: a slot is still being released after a prediction ended.
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            break
        if resp.status_code in (200, 201, 202):
            with run.cond:
                run.dispatched = True
                cancel_pending = run.cancel_requested_at is not None
            if cancel_pending:
                self._send_cancel(client, run.id)
            if resp.status_code in (200, 201):
                # A synchronous answer (should not happen with respond-async): use it.
                with contextlib.suppress(ValueError):
                    run.put("snapshot", resp.json())
            return None
        return CogResult("failed", error=runtime_error_message(resp))

    def _input_for_runtime(self, value: Any, callbacks: CallbackServer) -> Any:
        """Local files (``os.PathLike`` values) become URLs the runtime downloads."""
        if isinstance(value, os.PathLike):
            return callbacks.input_url(Path(value))
        if isinstance(value, dict):
            return {k: self._input_for_runtime(v, callbacks) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._input_for_runtime(v, callbacks) for v in value]
        return value

    def _check_stalled(self, run: Run) -> CogResult | None:
        """Called when no webhook arrived for a while: detect ignored cancels."""
        if run.cancel_requested_at is None:
            return None
        if time.monotonic() - run.cancel_requested_at < self.cancel_grace:
            return None
        # The runtime ignored the cancel: kill it; it restarts on the next prediction.
        with self._lock:
            self._stopping = True
        self._shutdown_process(graceful=False, timeout=5.0)
        return CogResult("canceled", logs=run.logs)

    def _apply_snapshot(self, run: Run, snap: dict[str, Any]) -> CogResult | None:
        """Turn one webhook snapshot into events; return the result if it is terminal.

        The runtime sends webhooks concurrently, so snapshots can arrive out of order;
        output and logs only ever grow, so anything not longer than what was already
        reported is ignored.
        """
        status = snap.get("status")
        terminal = status in TERMINAL_STATUSES
        if not run.started and (
            status == "processing"
            or (terminal and status != "canceled")
            or snap.get("output") is not None
        ):
            run.started = True
            self._emit(run, CogEvent("start"))
        logs = snap.get("logs")
        if isinstance(logs, str) and len(logs) > len(run.logs) and logs.startswith(run.logs):
            self._emit(run, CogEvent("logs", logs[len(run.logs) :]))
            run.logs = logs
        output = snap.get("output")
        if self.is_iterator and isinstance(output, list) and len(output) > run.emitted_chunks:
            for index in range(run.emitted_chunks, len(output)):
                chunk = self._convert_output(output[index], run.id, str(index))
                self._emit(run, CogEvent("output", chunk))
            run.emitted_chunks = len(output)
        if not terminal:
            return None
        metrics = snap.get("metrics") if isinstance(snap.get("metrics"), dict) else {}
        final = self._convert_output(output, run.id) if output is not None else None
        error: str | None = None
        logs = run.logs
        if status == "failed":
            raw = str(snap.get("error") or "")
            error, detailed = model_error(raw)
            if detailed and detailed not in logs:
                # The runtime sends no traceback; keep at least the exception type in logs.
                logs += ("" if not logs or logs.endswith("\n") else "\n") + detailed + "\n"
        return CogResult(
            cast(Literal["succeeded", "failed", "canceled"], status),
            output=final,
            error=error,
            logs=logs,
            metrics=dict(metrics or {}),
        )

    def _convert_output(self, value: Any, prediction_id: str, path: str = "") -> Any:
        """Files in ``value`` (internal URLs, ``data:`` URIs) as :class:`CogFile` values."""
        callbacks = self._callbacks
        if callbacks is None:
            return value
        return callbacks.convert_output(value, prediction_id, path)


_EXC_PREFIX = re.compile(r"(?:^|\s)([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):(?:\s|$)")


def model_error(raw: str) -> tuple[str, str]:
    """``Prediction failed: ... ValueError: boom`` -> (``boom``, ``ValueError: boom``).

    The runtime wraps the model's exception in its own prefixes (``Prediction failed:``,
    ``Generator iteration error:``). The first value is what the API reports as ``error``
    (``str(exception)``, as the real platform does); the second keeps the exception type
    for the logs.
    """
    text = raw.strip()
    match = _EXC_PREFIX.search(text)
    if match is None:
        detailed = re.sub(r"^(?:Prediction failed:\s*)+", "", text)
        return detailed or "Prediction failed", detailed
    detailed = text[match.start(1) :]
    message = text[match.end() :].strip()
    return message or match.group(1), detailed


def runtime_error_message(resp: httpx.Response) -> str:
    """A clean error from a runtime rejection (422 validation errors name the field)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code == 422 and isinstance(body, dict) and isinstance(body.get("detail"), list):
        parts = []
        for item in body["detail"]:
            if not isinstance(item, dict):
                continue
            loc = [str(p) for p in item.get("loc") or [] if p not in ("body", "input")]
            msg = str(item.get("msg") or "invalid value")
            parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
        if parts:
            return "Invalid input: " + "; ".join(parts)
    if isinstance(body, dict) and body.get("error"):
        return f"Cog runtime error ({resp.status_code}): {body['error']}"
    return f"Cog runtime error ({resp.status_code}): {resp.text[:500]}"
