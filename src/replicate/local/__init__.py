"""Local Replicate-compatible server (extra ``[local]``).

Importing this package is cheap: Starlette and uvicorn load only when a server starts.

    from replicate.local import serve
    with serve() as base_url:
        ...  # point a client at base_url

Public names: ``serve``, ``LocalServer``, ``run_local``, ``Input``, ``ConcatenateIterator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schema import ConcatenateIterator, Input
    from .server import LocalServer, run_local, serve

__all__ = ["ConcatenateIterator", "Input", "LocalServer", "run_local", "serve"]


def __getattr__(name: str) -> Any:
    if name in ("serve", "LocalServer", "run_local"):
        from . import server

        return getattr(server, name)
    if name in ("Input", "ConcatenateIterator"):
        from . import schema

        return getattr(schema, name)
    raise AttributeError(f"module 'replicate.local' has no attribute {name!r}")
