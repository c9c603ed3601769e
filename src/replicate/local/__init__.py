"""A local Replicate-compatible API server (extra ``[local]``: ``pip install "replicate[local]"``).

It speaks the Replicate HTTP API under ``/v1`` (same paths, status codes, JSON shapes,
headers, problem+json errors, SSE and signed webhooks) with local state in SQLite, so code
that calls Replicate runs offline, with no account and no cost.

Command line::

    replicate serve [--host 127.0.0.1] [--port 5080] [--db PATH|:memory:] [--token T ...]
    python -m replicate.local ...            # the same
    replicate run --local replicate/hello-world -i text=world

It prints ``REPLICATE_BASE_URL`` and ``REPLICATE_API_TOKEN`` to point any client at it.

In-process::

    import replicate
    from replicate.local import serve

    with serve() as base_url:               # a free loopback port, in-memory database
        client = replicate.Client(api_token="anything", base_url=base_url)
        client.run("replicate/hello-world", input={"text": "world"})   # "hello world"

        def shout(text: str) -> str:        # register plain Python callables as models
            return text.upper()

        base_url.server.register("me/shout", shout)
        client.run("me/shout", input={"text": "hi"})                  # "HI"

``LocalServer`` is the handle (``register``, ``sign_file_url``, ``faults``, ``requests``,
``webhook_deliveries``, ``advance_clock``, ``reset``, ``stop``/``crash``). Input schemas come
from signatures; ``Input(...)`` adds constraints as ``cog.Input`` does, and
``ConcatenateIterator[str]`` marks token streams.

Bundled models: ``replicate/hello-world``, ``local-demo/stream-text``, ``local-demo/make-file``,
``local-demo/fail``, ``local-demo/sleep`` and ``local-demo/hello-trainable``.

pytest: the ``replicate_server``, ``replicate_base_url``, ``replicate_client`` and
``replicate_env`` fixtures are available to every test suite once ``replicate`` is installed
(see ``replicate.local.pytest_plugin``).

Importing this package is cheap: Starlette and uvicorn load only when a server starts.
Design: ``local-server.md``; modules: ``app`` (routes), ``core`` (state and operations),
``store`` (SQLite), ``registry``/``schema`` (models, versions, Cog-style schemas,
validation), ``demo_models``, ``runner`` (queues, lifecycle), ``sse``, ``files``,
``webhooks``, ``auth``, ``errors``, ``controls`` (faults, request log), ``server``
(``serve``/``LocalServer``), ``cli``, ``pytest_plugin``.
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
