"""A local Replicate-compatible API server (extra ``[local]``: ``pip install "replicate[local]"``).

It speaks the Replicate HTTP API under ``/v1`` (same paths, status codes, JSON shapes,
headers, problem+json errors, SSE and signed webhooks) with local state in SQLite, so code
that calls Replicate runs offline, with no account and no cost.

Command line (``replicate serve``, or ``python -m replicate.local`` with the same options)::

    replicate serve                               # 127.0.0.1:5080, database in the user data dir
    replicate serve --port 0 --db :memory:        # a free port, state gone at exit
    replicate serve --cog acme/echo=./my-model    # also serve a Cog model directory
    replicate run --local replicate/hello-world -i text=world

- ``--host ADDR`` (default 127.0.0.1; a non-loopback address needs ``--token``),
  ``--port N`` (default 5080; ``0`` picks a free port), ``--db PATH|:memory:``.
- ``--token T`` (repeatable): accept only these tokens; by default any non-empty token works.
- ``--test-controls``: enable the ``/_local/...`` test-control routes (see below).
- ``--cog OWNER/NAME=DIR`` (repeatable): serve the Cog model in ``DIR`` (``cog.yaml`` +
  ``predict.py``, run by the real Cog runtime, extra ``[cog]``) as ``OWNER/NAME``; a bad
  value is reported as ``--cog VALUE: problem`` with a non-zero exit code.
  ``--eager``: start every Cog worker (and run its setup) before serving.
- ``--retention 1h|never``, ``--max-run-time 10m``, ``--webhook-secret whsec_...``,
  ``--public-url ORIGIN``, ``--stream-urls iterator|always``,
  ``--sync-file-outputs url|data-uri``, ``--no-demo-models``, ``--log-level LEVEL``.

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

``serve(models=None, *, db=, token=, test_controls=, retention=, cog=, **config)`` yields the
base URL (``.server`` is the handle). ``LocalServer`` is the handle itself (a context manager,
or ``start()``/``stop()``/``crash()``), with ``base_url``, ``api_token``, ``webhook_secret``
and:

- ``register("owner/name", fn, version_id=, concurrency=, description=, readme=, ..., train=,
  load=)``: serve a callable as a model; returns the version id. ``version_id`` pins it (to
  test code that runs a fixed ``"owner/name:<id>"``). ``train`` makes the model trainable
  (trainings run it; it returns the weights), ``load`` turns a weights file into the callable
  the trained version runs.
- ``LocalServer(cog={"acme/echo": "./my-model"})`` (or ``["acme/echo=./my-model"]``): Cog model
  directories, as ``--cog``; a bad one makes ``start()`` raise ``ValueError``.
- ``sign_file_url(file_id, ttl=)``: a signed download URL for an uploaded file.

Test controls (``test_controls=True``; also HTTP routes under ``/_local/``):

- ``add_fault(path=|operation=|method=, status=, retry_after=, delay_ms=, drop=, hang=,
  sse_drop_after=, webhook_fail=, ..., times=, probability=)``; ``faults.list()/clear()``.
- ``hold(id)``, ``release(id)``, ``emit(id, output, log=)``, ``complete(id, output)``,
  ``fail(id, error)``, ``abort(id)``; ``wait_for_status(id, *statuses, timeout=)``.
- ``script("owner/name", {"error": "boom"}, {"output": "Y"}, {"hold": True}, {"manual": True})``:
  outcomes of that model's next predictions, one each.
- ``set_limits(max_queue_depth=, max_upload_size=, page_sizes=, retention=, file_expiry=,
  webhook_backoff_scale=, webhook_timeout=, rate_limits=)``; ``limits()``.
- ``advance_clock("1h")`` (the virtual clock: retention, expiry, deadlines, rate limits),
  ``requests()`` (the request log, never tokens), ``clear_requests()``,
  ``webhook_deliveries(prediction_id=None)``.
- ``reset(secrets=False)``: clear predictions, files, user models, faults, scripts, logs and
  the webhook outbox, and restore the limits.

Input schemas come from signatures; ``Input(...)`` adds constraints as ``cog.Input`` does, and
``ConcatenateIterator[str]`` (``AsyncConcatenateIterator[str]`` for an ``async`` generator)
marks token streams.

Bundled models: ``replicate/hello-world``, ``local-demo/stream-text``, ``local-demo/make-file``,
``local-demo/file-info`` (takes a file), ``local-demo/fail``, ``local-demo/sleep`` and
``local-demo/hello-trainable``.

Web pages: ``/`` lists the models and the recent predictions; a prediction's ``urls.web`` is
``/web/p/{id}`` (status, input, logs and output shown inline, updating live while it runs); a
model's ``url`` is ``/web/{owner}/{name}`` (latest version, a playground generated from the
input schema that runs the model in the browser, input/output schema, examples, recent
predictions with their outputs, the README as Markdown). Reading pages needs no token; the
playground asks for one when the server has ``--token``.

pytest: the plugin (``replicate.local.pytest_plugin``) is available to every test suite once
``replicate`` is installed: ``replicate_server`` (a session server with test controls: the
handle above), ``replicate_base_url``, ``replicate_client`` (a client for it; the server is
reset after each test) and ``replicate_env`` (sets ``REPLICATE_BASE_URL`` and
``REPLICATE_API_TOKEN``); ``--replicate-real`` points them at the real API.

Importing this package is cheap: Starlette and uvicorn load only when a server starts.
Behaviour: ``docs/local-server.md``; modules: ``app`` (routes), ``core`` (state and operations),
``store`` (SQLite), ``registry``/``schema`` (models, versions, Cog-style schemas,
validation), ``demo_models``, ``runner`` (queues, lifecycle), ``sse``, ``files``,
``webhooks``, ``auth``, ``errors``, ``controls`` (faults, request log), ``catalogue``
(deployments, trainings, collections, search), ``cog`` (Cog models), ``web``
(HTML pages), ``server`` (``serve``/``LocalServer``), ``cli``, ``pytest_plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .schema import AsyncConcatenateIterator, ConcatenateIterator, Input
    from .server import LocalServer, run_local, serve

__all__ = [
    "AsyncConcatenateIterator",
    "ConcatenateIterator",
    "Input",
    "LocalServer",
    "run_local",
    "serve",
]


def __getattr__(name: str) -> Any:
    if name in ("serve", "LocalServer", "run_local"):
        from . import server

        return getattr(server, name)
    if name in ("Input", "ConcatenateIterator", "AsyncConcatenateIterator"):
        from . import schema

        return getattr(schema, name)
    raise AttributeError(f"module 'replicate.local' has no attribute {name!r}")
