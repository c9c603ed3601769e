"""Python client for Replicate: run machine-learning models in the cloud (or on a local server).

Quick start::

    import replicate

    output = replicate.run("replicate/hello-world", input={"text": "world"})

The module-level functions and namespaces use :data:`default_client`, looked up at call time, so
``replicate.default_client = replicate.Client(...)`` redirects them. Importing this package is
cheap: httpx and pydantic are loaded with the first request.
"""

from __future__ import annotations

import sys
import types
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from .__about__ import __version__
from .client import Client

if TYPE_CHECKING:
    from .batch import async_batch, batch
    from .exceptions import ModelError, ReplicateError, ReplicateException
    from .helpers import FileOutput
    from .pagination import async_paginate, paginate
    from .search import SearchResponse
    from .stream import ServerSentEvent
    from .use import AsyncFunction, Function

__all__ = [
    "Client",
    "FileOutput",
    "ModelError",
    "ReplicateError",
    "ReplicateException",
    "__version__",
    "accounts",
    "batch",
    "async_batch",
    "async_paginate",
    "async_run",
    "async_search",
    "async_stream",
    "collections",
    "default_client",
    "deployments",
    "files",
    "hardware",
    "models",
    "paginate",
    "predictions",
    "run",
    "search",
    "stream",
    "trainings",
    "use",
    "webhooks",
]

default_client: Client = Client()
"""The client behind the module-level API. Replace it to change their configuration."""


def run(
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool = True,
    timeout: float | None = None,
    **params: Any,
) -> Any:
    """Run a model and return its output.

    ``ref`` is ``"owner/name"``, ``"owner/name:version"``, a 64-character version id, or a
    ``Model``/``Version``/``Deployment``. Files in ``input`` are uploaded; URLs in the output
    become :class:`FileOutput` objects unless ``use_file_output=False``. ``timeout`` bounds the
    whole run and cancels the prediction when it expires. Raises :class:`ModelError` if the
    model fails.
    """
    return default_client.run(
        ref, input, use_file_output=use_file_output, timeout=timeout, **params
    )


async def async_run(
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool = True,
    timeout: float | None = None,
    **params: Any,
) -> Any:
    """Async twin of :func:`run`."""
    return await default_client.async_run(
        ref, input, use_file_output=use_file_output, timeout=timeout, **params
    )


class _StreamFunction:
    """``replicate.stream``: a function that also carries ``ServerSentEvent`` and ``EventSource``."""

    def __init__(self, name: str, doc: str) -> None:
        self.__name__ = self.__qualname__ = name
        self.__doc__ = doc
        self.__module__ = __name__

    def __getattr__(self, name: str) -> Any:
        # Names of the replicate.stream module (ServerSentEvent, EventSource, ...) are reachable
        # here too, also for code that did ``from replicate import stream`` expecting the module.
        if name.startswith("__"):
            raise AttributeError(name)
        import importlib

        return getattr(importlib.import_module(f"{__name__}.stream"), name)


class _Stream(_StreamFunction):
    def __call__(
        self,
        ref: Any,
        input: dict[str, Any] | None = None,
        *,
        use_file_output: bool = True,
        timeout: float | None = None,
        **params: Any,
    ) -> Iterator[ServerSentEvent]:
        return default_client.stream(
            ref, input, use_file_output=use_file_output, timeout=timeout, **params
        )


stream = _Stream(
    "stream",
    "Run a model and iterate over its output as server-sent events (``str(event)`` is the text).\n\n"
    "The prediction is created at the call; the result is a generator (as in 1.0.x) that\n"
    "connects on the first ``next()``. ``close()`` it when leaving the loop early.",
)


async def async_stream(
    ref: Any,
    input: dict[str, Any] | None = None,
    *,
    use_file_output: bool = True,
    timeout: float | None = None,
    **params: Any,
) -> AsyncIterator[ServerSentEvent]:
    """Async twin of :func:`stream`: ``async for event in await replicate.async_stream(...)``.

    A coroutine function, as in 1.0.x: awaiting it creates the prediction and gives an async
    generator of its events (``aclose()`` it when leaving the loop early).
    """
    return await default_client.async_stream(
        ref, input, use_file_output=use_file_output, timeout=timeout, **params
    )


def use(
    ref: Any, *, hint: Any = None, streaming: bool = False, use_async: bool = False
) -> Function | AsyncFunction:
    """A callable handle on a model: ``fn = replicate.use("owner/name"); fn(prompt="...")``.

    Performs no I/O until called.
    """
    return default_client.use(ref, hint=hint, streaming=streaming, use_async=use_async)


def search(query: str, *, limit: int | None = None) -> SearchResponse:
    """Search public models, collections and documentation pages."""
    return default_client.search(query, limit=limit)


async def async_search(query: str, *, limit: int | None = None) -> SearchResponse:
    """Async twin of :func:`search`."""
    return await default_client.async_search(query, limit=limit)


class _DefaultNamespace:
    """A namespace of :data:`default_client`, looked up at call time.

    It is one stable object whose attributes may be replaced (instrumentation libraries wrap
    ``replicate.predictions.create`` this way).
    """

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _target(self) -> Any:
        return getattr(default_client, self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._target())) | set(self.__dict__))

    def __repr__(self) -> str:
        return f"<replicate.{self._name} namespace of replicate.default_client>"


accounts: Any = _DefaultNamespace("accounts")
collections: Any = _DefaultNamespace("collections")
deployments: Any = _DefaultNamespace("deployments")
files: Any = _DefaultNamespace("files")
hardware: Any = _DefaultNamespace("hardware")
models: Any = _DefaultNamespace("models")
predictions: Any = _DefaultNamespace("predictions")
trainings: Any = _DefaultNamespace("trainings")
webhooks: Any = _DefaultNamespace("webhooks")

_LAZY = {
    "ReplicateException": "exceptions",
    "ReplicateError": "exceptions",
    "ModelError": "exceptions",
    "FileOutput": "helpers",
    "paginate": "pagination",
    "async_paginate": "pagination",
    "batch": "batch",
    "async_batch": "batch",
}
_SHADOWED = frozenset({"run", "stream", "use", "search", "hardware", "batch"})
# Submodules reachable as attributes after a bare ``import replicate`` (as in 1.0.x, where the
# package imported them all), loaded on first access so that the import itself stays light:
# ``def f(p: replicate.prediction.Prediction)`` works at import time of the user's module.
_SUBMODULES = frozenset(
    {
        "account",
        "client",
        "collection",
        "deployment",
        "exceptions",
        "file",
        "helpers",
        "identifier",
        "local",
        "model",
        "pagination",
        "prediction",
        "resource",
        "schema",
        "training",
        "version",
        "webhook",
    }
)


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBMODULES:
        # The import binds the attribute on the package (see _ReplicateModule.__setattr__).
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_LAZY))


class _ReplicateModule(types.ModuleType):
    """Keeps ``replicate.run`` & co. the functions even after their submodules are imported."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _ReplicateModule
