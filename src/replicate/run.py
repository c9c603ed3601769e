"""``run`` / ``async_run``: create a prediction, wait for it, return its output (docs/run.md).

The algorithm (docs/run.md, "The run() algorithm"):

1. resolve the ref (no I/O; bad refs raise ``ValueError``),
2. encode the input (file uploads happen here),
3. create the prediction (``Prefer: wait`` by default; ``Cancel-After`` when ``timeout`` is given),
4. look up the version schema when a version id is known (after the create; cached per client),
5. a complete create answer (terminal, or 201 + ``Preference-Applied: wait``) is returned at once,
6. an iterator output that is not complete yet becomes a lazy generator that polls,
7. anything else is polled to a terminal status.

``timeout=T`` bounds everything from the call on; on expiry the prediction is canceled (best effort)
and :class:`~replicate.exceptions.PredictionTimeoutError` is raised. Ctrl-C while waiting cancels
the prediction before the ``KeyboardInterrupt`` propagates.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import _polling
from . import identifier as identifier
from ._http import DEADLINE_EXTENSION, Operation, json_object_of
from .exceptions import ModelError as ModelError
from .exceptions import PredictionTimeoutError, ReplicateError
from .helpers import transform_output
from .identifier import ResolvedRef, resolve_ref
from .model import Model as Model
from .prediction import (
    Prediction,
    _async_encode_input,
    _cancel_operation,
    _check_create_params,
    _create_operation,
    _encode_input,
    _get_operation,
    _raise_for_status,
)
from .schema import make_schema_backwards_compatible, output_is_iterator
from .version import Version as Version
from .version import Versions as Versions

if TYPE_CHECKING:
    from .client import Client

__all__ = ["async_run", "run"]

logger = logging.getLogger("replicate")

#: Versions whose schema is remembered per client (versions are immutable).
SCHEMA_CACHE_SIZE = 256

Progress = Callable[[Prediction], Any]


# --------------------------------------------------------------------------------------------
# Version schema cache (docs/run.md, "Schema lookup and iterator outputs")
# --------------------------------------------------------------------------------------------


class _Unknown:
    """Marker for "no usable schema" (cached after a permanent lookup failure)."""


UNKNOWN: Any = _Unknown()


class SchemaCache:
    """A thread-safe bounded LRU of version id → backwards-compatible OpenAPI schema."""

    def __init__(self, maxsize: int = SCHEMA_CACHE_SIZE) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        """The cached schema (or ``UNKNOWN``), or ``None`` when not cached."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> None:
        """Remember ``value`` for ``key``, evicting the least recently used entries."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def _schema_cache(client: Client) -> SchemaCache:
    cache = client._schema_cache
    if cache is None:
        with client._lock:
            cache = client._schema_cache
            if cache is None:
                cache = client._schema_cache = SchemaCache()
    return cache  # type: ignore[no-any-return]


def _compatible(data: Mapping[str, Any]) -> Any:
    schema = data.get("openapi_schema")
    if not isinstance(schema, dict):
        return UNKNOWN
    return make_schema_backwards_compatible(schema, data.get("cog_version"))


def _version_model(resolved: ResolvedRef, prediction: Prediction) -> tuple[str, str] | None:
    if resolved.owner and resolved.name:
        return resolved.owner, resolved.name
    model = prediction.model
    if isinstance(model, str):
        owner, sep, name = model.partition("/")
        if sep and owner and name and "/" not in name:
            return owner, name
    return None


def _lookup_operation(owner: str, name: str, version_id: str) -> Operation[Any]:
    path = (
        f"/v1/models/{quote(owner, safe='')}/{quote(name, safe='')}"
        f"/versions/{quote(version_id, safe='')}"
    )
    return Operation("GET", path, parse=lambda response: _compatible(json_object_of(response)))


def _known_schema(client: Client, resolved: ResolvedRef) -> Any:
    """The schema when known without I/O (``UNKNOWN`` when there is nothing to look up), else
    ``None`` (a lookup is needed)."""
    version = resolved.version
    vid = resolved.version_id
    if version is not None:
        schema = getattr(version, "openapi_schema", None)
        if not isinstance(schema, dict):
            return UNKNOWN
        cache = _schema_cache(client)
        cached = cache.get(vid) if vid else None
        if cached is None:
            cached = _compatible({"openapi_schema": schema, "cog_version": version.cog_version})
            if vid:
                cache.put(vid, cached)
        return cached
    if vid is None or resolved.deployment is not None:
        return UNKNOWN
    return _schema_cache(client).get(vid)


def _lookup_failed(client: Client, vid: str, exc: Exception) -> Any:
    logger.warning(
        "Could not fetch the schema of version %s (%s); treating the output as a plain value",
        vid,
        type(exc).__name__,
    )
    status = exc.status if isinstance(exc, ReplicateError) else None
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        _schema_cache(client).put(vid, UNKNOWN)
    return UNKNOWN


def _schema_for(client: Client, resolved: ResolvedRef, prediction: Prediction) -> Any:
    schema = _known_schema(client, resolved)
    if schema is not None:
        return schema
    vid = resolved.version_id
    model = _version_model(resolved, prediction)
    if vid is None or model is None:
        return UNKNOWN
    try:
        schema = client._call(_lookup_operation(model[0], model[1], vid))
    except Exception as exc:
        return _lookup_failed(client, vid, exc)
    _schema_cache(client).put(vid, schema)
    return schema


async def _async_schema_for(client: Client, resolved: ResolvedRef, prediction: Prediction) -> Any:
    schema = _known_schema(client, resolved)
    if schema is not None:
        return schema
    vid = resolved.version_id
    model = _version_model(resolved, prediction)
    if vid is None or model is None:
        return UNKNOWN
    try:
        schema = await client._acall(_lookup_operation(model[0], model[1], vid))
    except Exception as exc:
        return _lookup_failed(client, vid, exc)
    _schema_cache(client).put(vid, schema)
    return schema


def _is_iterator(schema: Any) -> bool:
    return schema is not UNKNOWN and output_is_iterator(schema)


# --------------------------------------------------------------------------------------------
# Preparing the create
# --------------------------------------------------------------------------------------------


def _route(resolved: ResolvedRef) -> tuple[str, str | None]:
    """The create path of a resolved ref, and the version id to send in the body."""
    if resolved.deployment is not None:
        owner, name = resolved.deployment
        return f"/v1/deployments/{quote(owner, safe='')}/{quote(name, safe='')}/predictions", None
    if resolved.version_id is not None:
        return "/v1/predictions", resolved.version_id
    assert resolved.owner is not None and resolved.name is not None
    path = (
        f"/v1/models/{quote(resolved.owner, safe='')}/{quote(resolved.name, safe='')}/predictions"
    )
    return path, None


# Refs without a Version object are hashable and immutable: their route is computed once.
_cached_route = functools.lru_cache(maxsize=256)(_route)


class _Plan:
    """Everything decided before I/O: route, parameters, deadline, output handling."""

    __slots__ = (
        "client",
        "deadline",
        "limit",
        "params",
        "path",
        "progress",
        "resolved",
        "transform",
        "version",
    )

    def __init__(
        self,
        client: Client,
        ref: Any,
        use_file_output: Any,
        timeout: Any,
        progress: Progress | None,
        params: dict[str, Any],
    ) -> None:
        self.client = client
        self.resolved = resolved = resolve_ref(ref)
        self.limit = _polling.check_timeout(timeout)
        self.deadline = _polling.deadline_after(self.limit)
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be a callable taking a Prediction, not {progress!r}")
        self.progress = progress
        self.transform = bool(use_file_output)
        params.setdefault("wait", True)
        if self.limit is not None and params.get("cancel_after") is None:
            params["cancel_after"] = max(
                _polling.MIN_CANCEL_AFTER_SECONDS, math.ceil(min(self.limit, 1e9))
            )
        _check_create_params(params, "run")
        self.params = params
        if resolved.version is None:
            self.path, self.version = _cached_route(resolved)
        else:
            self.path, self.version = _route(resolved)

    def create_operation(self, encoded: Any) -> Operation[Prediction]:
        params = self.params
        left = _polling.remaining(self.deadline)
        if left is not None:
            if left <= 0:
                raise PredictionTimeoutError(None, self.limit)
            wait = params.get("wait")
            bound = max(1, math.ceil(left))
            if wait is True:
                too_long = bound < _polling.MAX_WAIT_SECONDS
            else:
                too_long = wait is not None and wait is not False and wait > bound
            if too_long:
                params = {**params, "wait": bound}
        return _create_operation(
            self.client, self.path, encoded, params, self.version, deadline=self.deadline
        )

    def output(self, value: Any) -> Any:
        return transform_output(value, self.client) if self.transform else value

    def notify(self, prediction: Prediction) -> None:
        if self.progress is not None:
            self.progress(prediction)

    async def anotify(self, prediction: Prediction) -> None:
        if self.progress is not None:
            result = self.progress(prediction)
            if inspect.isawaitable(result):
                await result

    def poll_operation(self, prediction: Prediction) -> Operation[Prediction]:
        op = _get_operation(self.client, prediction._require_id())
        if self.deadline is not None:
            op.extensions = {**op.extensions, DEADLINE_EXTENSION: self.deadline}
        return op


def _complete(prediction: Prediction) -> bool:
    return prediction.is_terminal or bool(prediction._sync_complete)


def _list_items(output: Any) -> list[Any]:
    return output if isinstance(output, list) else [output]


# The polling loop of run()/async_run() is written once, as a generator of steps (sans I/O);
# the sync and async shells below only perform them. A step is ``(_ITEM, value)`` (hand it to
# the caller), ``(_SLEEP, seconds)``, ``(_CALL, operation)`` (the parsed answer is sent back),
# ``(_NOTIFY, prediction)`` (the progress callback) or ``(_CANCEL, prediction)`` (best-effort
# cancel at the deadline; whether it was sent is sent back).
_ITEM, _SLEEP, _CALL, _NOTIFY, _CANCEL = 0, 1, 2, 3, 4

_Steps = Generator[tuple[int, Any], Any, None]


def _steps(plan: _Plan, prediction: Prediction, items: bool) -> _Steps:
    """Poll until terminal (never sleeping past the deadline); with ``items``, emit new list items."""
    yielded = 0
    n = 0
    deadline = plan.deadline
    while True:
        if items:
            output = prediction.output
            if isinstance(output, list) and len(output) > yielded:
                fresh, yielded = output[yielded:], len(output)
                for item in fresh:
                    yield _ITEM, plan.output(item)
        if prediction.is_terminal:
            return
        n += 1
        if deadline is not None and _polling.remaining(deadline) == 0:
            raise PredictionTimeoutError(prediction, plan.limit, (yield _CANCEL, prediction))
        delay = _polling.sleep_time(_polling.poll_delay(n, plan.client.poll_interval), deadline)
        if delay > 0:
            yield _SLEEP, delay
        if deadline is not None and _polling.remaining(deadline) == 0:
            raise PredictionTimeoutError(prediction, plan.limit, (yield _CANCEL, prediction))
        prediction._replace_from((yield _CALL, plan.poll_operation(prediction)))
        yield _NOTIFY, prediction


def _next_step(steps: _Steps, reply: Any) -> tuple[int, Any] | None:
    """The next step of ``steps`` (sending ``reply`` in), or ``None`` when they are done."""
    try:
        return steps.send(reply)
    except StopIteration:
        return None


def _tail(plan: _Plan, prediction: Prediction) -> list[Any]:
    """After the poll loop of an iterator output: raise for failure, else a non-list output."""
    _raise_for_status(prediction)
    output = prediction.output
    if output is not None and not isinstance(output, list):
        return [plan.output(output)]
    return []


_MUST_WAIT: Any = object()


def _outcome(
    plan: _Plan,
    prediction: Prediction,
    schema: Any,
    items: Callable[[_Plan, list[Any]], Any],
    iterate: Callable[[_Plan, Prediction], Any],
) -> Any:
    """What run() returns right after the create, or ``_MUST_WAIT`` when it must poll first.

    A complete prediction gives its output (``items`` of the list for an iterator output); an
    incomplete one with an iterator output gives ``iterate`` (the polling iterator).
    """
    iterator = _is_iterator(schema)
    if _complete(prediction):
        _raise_for_status(prediction)
        if iterator and prediction.output is not None:
            return items(plan, _list_items(prediction.output))
        return plan.output(prediction.output)
    if iterator:
        return iterate(plan, prediction)
    return _MUST_WAIT


# --------------------------------------------------------------------------------------------
# sync
# --------------------------------------------------------------------------------------------


def _cancel(plan: _Plan, prediction: Prediction) -> bool:
    """Best-effort cancel: errors are logged, never raised. Returns whether it was sent."""
    try:
        prediction._replace_from(
            plan.client._call(_cancel_operation(plan.client, prediction._require_id()))
        )
        return True
    except Exception as exc:
        logger.warning("Could not cancel prediction %s: %s", prediction.id, type(exc).__name__)
        return False


def _perform(plan: _Plan, kind: int, value: Any) -> Any:
    """Perform one non-item step with blocking I/O; return what to send back."""
    if kind == _SLEEP:
        time.sleep(value)
        return None
    if kind == _CALL:
        return plan.client._call(value)
    if kind == _NOTIFY:
        plan.notify(value)
        return None
    return _cancel(plan, value)


def _wait(plan: _Plan, prediction: Prediction) -> None:
    steps, reply = _steps(plan, prediction, False), None
    try:
        while (step := _next_step(steps, reply)) is not None:
            reply = _perform(plan, *step)
    except KeyboardInterrupt:
        _cancel(plan, prediction)
        raise


def _items(plan: _Plan, items: list[Any]) -> Iterator[Any]:
    for item in items:
        yield plan.output(item)


def _iterate(plan: _Plan, prediction: Prediction) -> Iterator[Any]:
    """Yield list items as they appear while polling (the rules of ``output_iterator``, docs/predictions.md)."""
    steps, reply = _steps(plan, prediction, True), None
    try:
        while (step := _next_step(steps, reply)) is not None:
            kind, value = step
            if kind == _ITEM:
                reply = None
                yield value
            else:
                reply = _perform(plan, kind, value)
    except KeyboardInterrupt:
        _cancel(plan, prediction)
        raise
    yield from _tail(plan, prediction)


def run(
    client: Client,
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    **params: Any,
) -> Any:
    """Run a model and return its output (see :func:`replicate.run`).

    ``progress``, when given, is called with the :class:`~replicate.prediction.Prediction` after
    the create and after every poll (in ``async_run`` it may also be a coroutine function).
    """
    plan = _Plan(client, ref, use_file_output, timeout, progress, params)
    encoded = _encode_input(client, input, plan.params.get("file_encoding_strategy"))
    prediction = client._call(plan.create_operation(encoded))
    try:
        plan.notify(prediction)
        schema = _schema_for(client, plan.resolved, prediction)
    except KeyboardInterrupt:
        if not _complete(prediction):
            _cancel(plan, prediction)
        raise
    result = _outcome(plan, prediction, schema, _items, _iterate)
    if result is not _MUST_WAIT:
        return result
    _wait(plan, prediction)
    _raise_for_status(prediction)
    return plan.output(prediction.output)


# --------------------------------------------------------------------------------------------
# async
# --------------------------------------------------------------------------------------------


async def _async_cancel(plan: _Plan, prediction: Prediction) -> bool:
    try:
        answer: Prediction = await plan.client._acall(
            _cancel_operation(plan.client, prediction._require_id())
        )
        prediction._replace_from(answer)
        return True
    except Exception as exc:
        logger.warning("Could not cancel prediction %s: %s", prediction.id, type(exc).__name__)
        return False


async def _aperform(plan: _Plan, kind: int, value: Any) -> Any:
    """Async twin of :func:`_perform`."""
    if kind == _SLEEP:
        await asyncio.sleep(value)
        return None
    if kind == _CALL:
        return await plan.client._acall(value)
    if kind == _NOTIFY:
        await plan.anotify(value)
        return None
    return await _async_cancel(plan, value)


async def _cancel_on_interrupt(plan: _Plan, prediction: Prediction) -> None:
    # The task was cancelled (Ctrl-C under asyncio.run, or a caller's cancel): best effort,
    # shielded so that the cancel request itself is not interrupted.
    try:
        await asyncio.shield(_async_cancel(plan, prediction))
    except BaseException:  # pragma: no cover - a second interruption
        pass


async def _async_wait(plan: _Plan, prediction: Prediction) -> None:
    steps, reply = _steps(plan, prediction, False), None
    try:
        while (step := _next_step(steps, reply)) is not None:
            reply = await _aperform(plan, *step)
    except (KeyboardInterrupt, asyncio.CancelledError):
        await _cancel_on_interrupt(plan, prediction)
        raise


async def _async_items(plan: _Plan, items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield plan.output(item)


async def _async_iterate(plan: _Plan, prediction: Prediction) -> AsyncIterator[Any]:
    steps, reply = _steps(plan, prediction, True), None
    try:
        while (step := _next_step(steps, reply)) is not None:
            kind, value = step
            if kind == _ITEM:
                reply = None
                yield value
            else:
                reply = await _aperform(plan, kind, value)
    except (KeyboardInterrupt, asyncio.CancelledError):
        await _cancel_on_interrupt(plan, prediction)
        raise
    for item in _tail(plan, prediction):
        yield item


async def async_run(
    client: Client,
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool | None = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    **params: Any,
) -> Any:
    """Async twin of :func:`run`; iterator outputs are async generators."""
    plan = _Plan(client, ref, use_file_output, timeout, progress, params)
    encoded = await _async_encode_input(client, input, plan.params.get("file_encoding_strategy"))
    prediction = await client._acall(plan.create_operation(encoded))
    try:
        await plan.anotify(prediction)
        schema = await _async_schema_for(client, plan.resolved, prediction)
    except (KeyboardInterrupt, asyncio.CancelledError):
        if not _complete(prediction):
            await _cancel_on_interrupt(plan, prediction)
        raise
    result = _outcome(plan, prediction, schema, _async_items, _async_iterate)
    if result is not _MUST_WAIT:
        return result
    await _async_wait(plan, prediction)
    _raise_for_status(prediction)
    return plan.output(prediction.output)
