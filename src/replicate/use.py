"""``use()``: a model as a Python function, with file outputs as local paths.

::

    flux = replicate.use("black-forest-labs/flux-schnell")
    [image] = flux(prompt="an astronaut")   # URLPath objects: os.PathLike, downloaded on first use
    open(image, "rb").read()

``use()`` performs no I/O; the first call resolves the model (and its schema) and caches it.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from .helpers import _is_file_url, file_name_from_url
from .identifier import ModelVersionIdentifier, is_version_id

if TYPE_CHECKING:
    from .client import Client
    from .prediction import Prediction

__all__ = ["AsyncFunction", "AsyncRun", "Function", "Run", "URLPath", "get_path_url", "use"]


class URLPath(os.PathLike):  # type: ignore[type-arg]
    """A file output: ``os.PathLike``, downloaded once (thread-safe) the first time it is used."""

    def __init__(self, url: str, client: Client | None = None) -> None:
        self.url = url
        self._client = client
        self._path: str | None = None
        self._lock = threading.Lock()

    @property
    def __url__(self) -> str:
        return self.url

    def __fspath__(self) -> str:
        if self._path is None:
            with self._lock:
                if self._path is None:
                    self._path = self._download()
        return self._path

    def _download(self) -> str:
        from .helpers import FileOutput

        digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        folder = os.path.join(tempfile.gettempdir(), "replicate", digest)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, file_name_from_url(self.url))
        if not os.path.exists(path):
            part = f"{path}.{os.getpid()}.{threading.get_ident()}.part"
            FileOutput(self.url, self._client).save(part)
            os.replace(part, path)
        return path

    def __str__(self) -> str:
        return self.__fspath__()

    def __repr__(self) -> str:
        shown = (
            self.url
            if len(self.url) <= 80 or not self.url.startswith("data:")
            else self.url[:60] + "..."
        )
        return f"URLPath({shown!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URLPath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(("URLPath", self.url))


def get_path_url(obj: Any) -> str | None:
    """The URL behind a :class:`URLPath` (without downloading it), else ``None``."""
    return obj.url if isinstance(obj, URLPath) else None


# ---------------------------------------------------------------------- schemas (pure)


def _components(schema: dict[str, Any] | None) -> dict[str, Any]:
    return ((schema or {}).get("components") or {}).get("schemas") or {}


def _deref(spec: Any, components: dict[str, Any], depth: int = 0) -> Any:
    """``spec`` with local ``$ref``s (and single ``allOf`` wrappers) replaced by their targets."""
    if depth > 32:
        return spec
    if isinstance(spec, list):
        return [_deref(item, components, depth + 1) for item in spec]
    if not isinstance(spec, dict):
        return spec
    ref = spec.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        target = components.get(ref.rsplit("/", 1)[-1], {})
        merged = {
            **_deref(target, components, depth + 1),
            **{k: v for k, v in spec.items() if k != "$ref"},
        }
        return merged
    return {key: _deref(value, components, depth + 1) for key, value in spec.items()}


def _output_spec(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    components = _components(schema)
    if "Output" not in components:
        return None
    spec = _deref(components["Output"], components)
    all_of = spec.get("allOf") if isinstance(spec, dict) else None
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        spec = {**all_of[0], **{k: v for k, v in spec.items() if k != "allOf"}}
    return spec if isinstance(spec, dict) else None


def _is_iterator(spec: dict[str, Any] | None) -> bool:
    return bool(spec) and spec.get("type") == "array" and spec.get("x-cog-array-type") == "iterator"  # type: ignore[union-attr]


def _is_concatenate(spec: dict[str, Any] | None) -> bool:
    return _is_iterator(spec) and spec.get("x-cog-array-display") == "concatenate"  # type: ignore[union-attr]


def _process(value: Any, spec: dict[str, Any] | None, client: Client | None) -> Any:
    """Turn file URLs into :class:`URLPath` by schema (or by the URL rule when there is none)."""
    if spec:
        kind = spec.get("type")
        if kind == "array" and isinstance(value, list):
            items = spec.get("items")
            return [_process(v, items if isinstance(items, dict) else None, client) for v in value]
        if kind == "object" and isinstance(value, dict):
            props = spec.get("properties") or {}
            return {k: _process(v, props.get(k), client) for k, v in value.items()}
        if kind == "string" and isinstance(value, str):
            return URLPath(value, client) if spec.get("format") == "uri" else value
        if kind is not None:
            return value
    if isinstance(value, str):
        return URLPath(value, client) if _is_file_url(value, client) else value
    if isinstance(value, list):
        return [_process(v, None, client) for v in value]
    if isinstance(value, dict):
        return {k: _process(v, None, client) for k, v in value.items()}
    return value


def _final_output(value: Any, spec: dict[str, Any] | None, client: Client | None) -> Any:
    if _is_concatenate(spec) and isinstance(value, list):
        return "".join(str(item) for item in value)
    return _process(value, spec, client)


class OutputIterator:
    """Streamed output of a Function; passing it to another model's input joins it first."""

    def __init__(self, items: Iterator[Any], concatenate: bool) -> None:
        self._items = items
        self.concatenate = concatenate

    def __iter__(self) -> Iterator[Any]:
        return self._items

    def __next__(self) -> Any:
        return next(self._items)

    def _joined(self) -> Any:
        items = list(self._items)
        return "".join(str(i) for i in items) if self.concatenate else items


class AsyncOutputIterator:
    """Async twin of :class:`OutputIterator`."""

    def __init__(self, items: AsyncIterator[Any], concatenate: bool) -> None:
        self._items = items
        self.concatenate = concatenate

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items

    async def __anext__(self) -> Any:
        return await self._items.__anext__()

    async def _joined(self) -> Any:
        items = [item async for item in self._items]
        return "".join(str(i) for i in items) if self.concatenate else items


def _prepare_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, URLPath):
            return value.url
        if isinstance(value, OutputIterator):
            return value._joined()
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        return value

    return {key: convert(value) for key, value in inputs.items()}


async def _async_prepare_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    ready: dict[str, Any] = {}
    for key, value in inputs.items():
        ready[key] = await value._joined() if isinstance(value, AsyncOutputIterator) else value
    return _prepare_inputs(ready)


# ---------------------------------------------------------------------- the target


class _Target:
    """What the function runs: a pinned version id or a model, and the schema once known."""

    def __init__(self, ref: Any) -> None:
        from .model import Model
        from .version import Version

        self.ref = ref
        self.version: str | None = None
        self.model: str | None = None
        self.schema: dict[str, Any] | None = None
        self.resolved = False
        self.lock = threading.Lock()
        if isinstance(ref, Version):
            self.version, self.schema, self.resolved = ref.id, ref.openapi_schema, True
        elif isinstance(ref, Model):
            self.model = f"{ref.owner}/{ref.name}"
        elif is_version_id(ref):
            self.version = ref
        elif isinstance(ref, str):
            parsed = ModelVersionIdentifier.parse(ref)
            self.model = f"{parsed.owner}/{parsed.name}"
            self.version = parsed.version
        else:
            raise ValueError(
                f"Invalid argument: {ref}. Expected model, version, or reference in the "
                "format owner/name or owner/name:version"
            )

    def pending_lookup(self) -> tuple[str, str | None] | None:
        """The (model, version or None) to fetch before the first run, if any."""
        if self.resolved or self.model is None:
            return None
        return self.model, self.version

    def adopt_model(self, model: Any) -> None:
        latest = model.latest_version
        if latest is not None and not getattr(model, "is_official", False):
            self.version = latest.id
        self.schema = latest.openapi_schema if latest is not None else None
        self.resolved = True

    def adopt_version(self, version: Any) -> None:
        self.schema = version.openapi_schema
        self.resolved = True

    def create_kwargs(self, inputs: dict[str, Any], wait: Any) -> dict[str, Any]:
        if self.version is not None:
            return {"version": self.version, "input": inputs, "wait": wait}
        return {"model": self.model, "input": inputs, "wait": wait}

    def learn_from(self, prediction: Prediction) -> tuple[str, str] | None:
        """For a bare version id: the (model, version) to fetch the schema from, once."""
        if self.resolved or not isinstance(prediction.model, str) or "/" not in prediction.model:
            return None
        self.model = prediction.model
        return prediction.model, self.version or ""


# ---------------------------------------------------------------------- sync


class Run:
    """A prediction started by :meth:`Function.create`."""

    def __init__(self, function: Function, prediction: Prediction) -> None:
        self.prediction = prediction
        self._function = function

    def output(self) -> Any:
        """Wait for the prediction and return its post-processed output (raises on failure)."""
        from .prediction import _raise_for_status

        prediction = self.prediction
        if not (prediction.is_terminal or prediction._sync_complete):
            prediction.wait()
        _raise_for_status(prediction)
        spec = _output_spec(self._function._schema_after(prediction))
        return _final_output(prediction.output, spec, self._function._client)

    def logs(self) -> str | None:
        """Reload the prediction and return its logs."""
        return self.prediction.reload().logs

    def cancel(self) -> Prediction:
        """Cancel the prediction."""
        return self.prediction.cancel()


class Function:
    """A model as a callable: ``fn(**inputs)`` runs it and returns its output."""

    def __init__(self, client: Client, ref: Any, *, streaming: bool = False) -> None:
        self._client = client
        self.ref = ref
        self._streaming = streaming
        self._target = _Target(ref)

    def __repr__(self) -> str:
        return f"Function({self.ref!r})"

    def _resolve(self) -> _Target:
        target = self._target
        with target.lock:
            lookup = target.pending_lookup()
            if lookup is not None:
                model, version = lookup
                if version is None:
                    target.adopt_model(self._client.models.get(model))
                else:
                    target.adopt_version(self._client.models.versions.get(model, version))
        return target

    def _schema_after(self, prediction: Prediction) -> dict[str, Any] | None:
        target = self._target
        with target.lock:
            lookup = target.learn_from(prediction)
            if lookup is not None:
                try:
                    target.adopt_version(self._client.models.versions.get(*lookup))
                except Exception:
                    target.resolved = True
        return target.schema

    def openapi_schema(self) -> dict[str, Any]:
        """The model's OpenAPI schema, with local ``$ref``s resolved (a deep copy)."""
        schema = self._resolve().schema or {}
        return _deref(copy.deepcopy(schema), _components(schema))  # type: ignore[no-any-return]

    def create(self, **inputs: Any) -> Run:
        """Start a prediction in the background."""
        target = self._resolve()
        kwargs = target.create_kwargs(_prepare_inputs(inputs), wait=False)
        return Run(self, self._client.predictions.create(**kwargs))

    def __call__(self, **inputs: Any) -> Any:
        if self._streaming:
            return self._stream(inputs)
        target = self._resolve()
        prediction = self._client.predictions.create(
            **target.create_kwargs(_prepare_inputs(inputs), wait=True)
        )
        return Run(self, prediction).output()

    def _stream(self, inputs: dict[str, Any]) -> Any:
        target = self._resolve()
        prediction = self._client.predictions.create(
            **target.create_kwargs(_prepare_inputs(inputs), wait=False)
        )
        spec = _output_spec(self._schema_after(prediction))
        items_spec = (spec or {}).get("items") if spec else None

        def items() -> Iterator[Any]:
            for item in prediction.output_iterator():
                yield _process(item, items_spec, self._client)

        if not _is_iterator(spec):
            return iter([Run(self, prediction).output()])
        return OutputIterator(items(), _is_concatenate(spec))


# ---------------------------------------------------------------------- async


class AsyncRun:
    """A prediction started by :meth:`AsyncFunction.create`."""

    def __init__(self, function: AsyncFunction, prediction: Prediction) -> None:
        self.prediction = prediction
        self._function = function

    async def output(self) -> Any:
        """Wait for the prediction and return its post-processed output (raises on failure)."""
        from .prediction import _raise_for_status

        prediction = self.prediction
        if not (prediction.is_terminal or prediction._sync_complete):
            await prediction.async_wait()
        _raise_for_status(prediction)
        spec = _output_spec(await self._function._schema_after(prediction))
        return _final_output(prediction.output, spec, self._function._client)

    async def logs(self) -> str | None:
        """Reload the prediction and return its logs."""
        return (await self.prediction.async_reload()).logs

    async def cancel(self) -> Prediction:
        """Cancel the prediction."""
        return await self.prediction.async_cancel()


class AsyncFunction:
    """Async twin of :class:`Function`: ``await fn(**inputs)``."""

    def __init__(self, client: Client, ref: Any, *, streaming: bool = False) -> None:
        self._client = client
        self.ref = ref
        self._streaming = streaming
        self._target = _Target(ref)
        self._alock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AsyncFunction({self.ref!r})"

    async def _resolve(self) -> _Target:
        target = self._target
        async with self._alock:
            lookup = target.pending_lookup()
            if lookup is not None:
                model, version = lookup
                if version is None:
                    target.adopt_model(await self._client.models.async_get(model))
                else:
                    target.adopt_version(
                        await self._client.models.versions.async_get(model, version)
                    )
        return target

    async def _schema_after(self, prediction: Prediction) -> dict[str, Any] | None:
        target = self._target
        async with self._alock:
            lookup = target.learn_from(prediction)
            if lookup is not None:
                try:
                    target.adopt_version(await self._client.models.versions.async_get(*lookup))
                except Exception:
                    target.resolved = True
        return target.schema

    async def openapi_schema(self) -> dict[str, Any]:
        """The model's OpenAPI schema, with local ``$ref``s resolved (a deep copy)."""
        schema = (await self._resolve()).schema or {}
        return _deref(copy.deepcopy(schema), _components(schema))  # type: ignore[no-any-return]

    async def create(self, **inputs: Any) -> AsyncRun:
        """Start a prediction in the background."""
        target = await self._resolve()
        ready = await _async_prepare_inputs(inputs)
        return AsyncRun(
            self,
            await self._client.predictions.async_create(**target.create_kwargs(ready, wait=False)),
        )

    async def __call__(self, **inputs: Any) -> Any:
        if self._streaming:
            return await self._stream(inputs)
        target = await self._resolve()
        ready = await _async_prepare_inputs(inputs)
        prediction = await self._client.predictions.async_create(
            **target.create_kwargs(ready, wait=True)
        )
        return await AsyncRun(self, prediction).output()

    async def _stream(self, inputs: dict[str, Any]) -> Any:
        target = await self._resolve()
        ready = await _async_prepare_inputs(inputs)
        prediction = await self._client.predictions.async_create(
            **target.create_kwargs(ready, wait=False)
        )
        spec = _output_spec(await self._schema_after(prediction))
        items_spec = (spec or {}).get("items") if spec else None

        async def items() -> AsyncIterator[Any]:
            if not _is_iterator(spec):
                yield await AsyncRun(self, prediction).output()
                return
            async for item in prediction.async_output_iterator():
                yield _process(item, items_spec, self._client)

        return AsyncOutputIterator(items(), _is_concatenate(spec))


def use(
    client: Client,
    ref: Any,
    *,
    hint: Any = None,
    streaming: bool = False,
    use_async: bool = False,
) -> Function | AsyncFunction:
    """A callable handle on a model (no I/O until it is called). ``hint`` is for typing only."""
    if use_async:
        return AsyncFunction(client, ref, streaming=streaming)
    return Function(client, ref, streaming=streaming)
