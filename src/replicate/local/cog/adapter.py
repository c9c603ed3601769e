"""A Cog worker as the local server's runner sees it: a plain Python callable.

:func:`cog_callable` wraps a :class:`CogWorker` as the kind of function the runner calls
for any model (inputs as keyword arguments, logs on ``sys.stdout``, a generator for
iterator outputs); :func:`register_cog_model` registers it with the server's registry.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import queue
import secrets
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .errors import CogPredictionError
from .events import CogEvent, CogFile, CogResult
from .model import CogModel
from .worker import CogWorker

__all__ = ["cog_callable", "register_cog_model"]


def _to_plain_output(value: Any) -> Any:
    if isinstance(value, CogFile):
        return value.path
    if isinstance(value, list):
        return [_to_plain_output(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain_output(v) for k, v in value.items()}
    return value


def _opened_output(value: Any) -> Any:
    """Like :func:`_to_plain_output` but files become open file objects, already unlinked.

    The runner reads them (keeping the model's filename from ``.name``) after the callable
    returned, when the worker's copy may already be gone.
    """
    if isinstance(value, CogFile):
        handle = value.path.open("rb")
        if os.name == "posix":
            with contextlib.suppress(OSError):
                value.path.unlink()
        return handle
    if isinstance(value, list):
        return [_opened_output(v) for v in value]
    if isinstance(value, dict):
        return {k: _opened_output(v) for k, v in value.items()}
    return value


def _to_cog_input(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_to_cog_input(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_cog_input(v) for k, v in value.items()}
    return value


def cog_callable(worker: CogWorker, *, poll: float = 0.1) -> Callable[..., Any]:
    """Wrap a worker as a plain Python callable for a thread-based prediction runner.

    The callable takes ``cancel_event`` plus the inputs as keyword arguments (``None``
    values are dropped so the runtime applies its defaults; ``pathlib.Path`` values, as
    the runner makes of file inputs, are served to the runtime by the worker). Logs are written to ``sys.stdout`` in the
    calling thread as they arrive (so a runner that captures stdout per prediction records
    them live). For iterator outputs it is a generator yielding chunks; otherwise it
    returns the final output. :class:`CogFile` values become ``pathlib.Path`` objects in
    chunks and open (already unlinked) file objects in final outputs; the worker's copies
    are deleted once the prediction is over and the runner has had them.
    A failed prediction raises :class:`CogPredictionError`; a canceled one just ends
    (the runner sees its own ``cancel_event`` set).
    """

    def drive(cancel_event: threading.Event | None, inputs: dict[str, Any]) -> Any:

        events: queue.Queue[CogEvent | BaseException] = queue.Queue()
        prediction_id = "local-" + secrets.token_hex(12)
        payload = {k: _to_cog_input(v) for k, v in inputs.items() if v is not None}

        done: set[str] = set()
        done_lock = threading.Lock()

        def mark_done(part: str) -> None:
            # The worker's copies of output files go once the runner has taken them
            # (consumer done) and the runtime can no longer add any (prediction done).
            with done_lock:
                done.add(part)
                both = done == {"consumer", "prediction"}
            if both:
                worker.discard_outputs(prediction_id)

        def target() -> None:
            try:
                worker.predict(prediction_id, payload, events.put)
            except BaseException as exc:  # surfaced in the caller's thread
                events.put(exc)
            finally:
                mark_done("prediction")

        threading.Thread(target=target, daemon=True, name=f"cog-{prediction_id}").start()
        cancel_sent = False
        finished = False
        try:
            while True:
                try:
                    item = events.get(timeout=poll)
                except queue.Empty:
                    if cancel_event is not None and cancel_event.is_set() and not cancel_sent:
                        cancel_sent = worker.cancel(prediction_id)
                    continue
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                if item.type == "logs":
                    sys.stdout.write(item.data)
                    sys.stdout.flush()
                elif item.type == "output":
                    yield ("chunk", _to_plain_output(item.data))
                elif item.type == "completed":
                    finished = True
                    result: CogResult = item.data
                    if result.status == "failed":
                        raise CogPredictionError(result.error or "Prediction failed")
                    yield ("result", result)
                    return
        finally:
            if not finished:
                # Closed early (the runner stopped iterating): cancel on the runtime too.
                worker.cancel(prediction_id)
            mark_done("consumer")

    if worker.is_iterator:

        def run_iterator(cancel_event: threading.Event, **inputs: Any) -> Iterable[Any]:
            steps = drive(cancel_event, inputs)
            try:
                for kind, value in steps:
                    if kind == "chunk":
                        yield value
            finally:
                steps.close()

        return run_iterator

    def run_once(cancel_event: threading.Event, **inputs: Any) -> Any:
        steps = drive(cancel_event, inputs)
        try:
            for kind, value in steps:
                if kind == "result":
                    return _opened_output(value.output)
            return None
        finally:
            steps.close()

    return run_once


def register_cog_model(
    registry: Any,
    model: CogModel,
    worker: CogWorker,
    **register_options: Any,
) -> str:
    """Register a Cog model with the local server's callable registry; returns the version id.

    Uses ``registry.register(owner/name, fn, concurrency=, version_id=, ...)`` with
    :func:`cog_callable`, then stores the Cog document as the version's
    ``openapi_schema`` (and its ``cog_version``), since a ``**inputs`` callable has no
    signature to derive it from. If the registry accepts ``openapi_schema=``, that is used
    instead of the direct update.
    """

    options: dict[str, Any] = {
        "concurrency": model.concurrency,
        "version_id": model.version_id,
        "source": "cog",
        "official": False,
    }
    options.update(register_options)
    params = inspect.signature(registry.register).parameters
    direct = "openapi_schema" in params
    if direct:
        options["openapi_schema"] = model.schema
        if "cog_version" in params:
            options["cog_version"] = model.cog_version
    version_id: str = registry.register(model.owner_name, cog_callable(worker), **options)
    if not direct:
        canonical = json.dumps(model.schema, sort_keys=True, separators=(",", ":"))
        registry.store.execute(
            "UPDATE versions SET openapi_schema = ?, cog_version = ? WHERE id = ?",
            (canonical, model.cog_version, version_id),
        )
    return version_id
