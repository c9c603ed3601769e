"""Starting the server: ``LocalServer`` (a handle) and the ``serve()`` context manager."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .auth import split_token
from .core import Core, ServerConfig
from .gate import MAX_CLOCK_OFFSET, MAX_PERIOD
from .gate import duration as _duration
from .tls import TLSFiles

DEFAULT_TOKEN = "r8_local_any_token_works"


class BaseURL(str):
    """The base URL yielded by ``serve()``; ``.server`` is the ``LocalServer`` handle."""

    server: LocalServer


def _retention(value: str | float | None) -> float | None:
    if value is None or value == "never":
        return None
    return _duration(value, "retention", maximum=MAX_PERIOD)


def _cog_specs(
    cog: Sequence[str] | Mapping[str, str | os.PathLike[str]] | None,
) -> list[str] | dict[str, str] | None:
    if not cog:
        return None
    if isinstance(cog, Mapping):
        return {str(k): os.fspath(v) for k, v in cog.items()}
    if isinstance(cog, str):
        return [cog]
    return list(cog)


class LocalServer:
    """A local Replicate-compatible server running in a background thread.

    Use as a context manager, or call ``start()``/``stop()``. ``base_url`` is the origin
    (clients add ``/v1``); ``api_token`` is a token the server accepts. ``token`` values
    are plain tokens (one account) or ``"NAME=TOKEN"`` (separate, isolated accounts). ``cog`` serves Cog
    model directories, as ``{"owner/name": dir}`` or ``["owner/name=dir", ...]`` (the
    ``--cog`` values); a bad directory makes ``start()`` raise ``ValueError``. ``tls=True``
    serves HTTPS with a locally generated CA (as ``--tls``): ``base_url`` is ``https://...``,
    file outputs are https URLs, and ``ca_file`` is the PEM bundle clients trust (set
    ``SSL_CERT_FILE`` to it, or pass it as ``verify=``).
    ``test_controls=True`` on a non-loopback ``host`` raises ``ValueError`` at ``start()``
    unless ``allow_remote_controls=True``. Other keyword arguments are ``ServerConfig``
    fields, e.g. ``cancel_grace=0.5`` (seconds a cancelled model that can stop gets before
    it is forced to ``canceled``; its slot stays taken until its thread ends).
    """

    def __init__(
        self,
        models: Mapping[str, Callable[..., Any]] | None = None,
        *,
        db: str = ":memory:",
        token: str | list[str] | None = None,
        test_controls: bool = False,
        retention: str | float | None = "1h",
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_secret: str | None = None,
        demo_models: bool = True,
        public_url: str | None = None,
        cog: Sequence[str] | Mapping[str, str] | None = None,
        tls: bool = False,
        **config: Any,
    ) -> None:
        tokens = [token] if isinstance(token, str) else (list(token) if token else None)
        self.config = ServerConfig(
            db=db,
            tokens=tokens,
            test_controls=test_controls,
            retention=_retention(retention),
            webhook_secret=webhook_secret,
            demo_models=demo_models,
            public_url=public_url,
            cog=_cog_specs(cog),
            **config,
        )
        self.host = host
        self.port = port
        self.api_token = split_token(tokens[0])[1] if tokens else DEFAULT_TOKEN
        self._models = dict(models or {})
        self.core: Core | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.tls = tls
        self._tls: TLSFiles | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LocalServer:
        """Start serving; returns self once ``/_local/health`` answers."""
        import uvicorn

        from .app import build_app
        from .core import check_controls_bind

        check_controls_bind(self.config, self.host)
        core = Core(self.config)
        self.core = core
        for name, fn in self._models.items():
            core.register(name, fn)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        ssl_options: dict[str, Any] = {}
        if self.tls:
            from .tls import prepare

            self._tls = prepare(self.config.db, (self.host,))
            ssl_options["ssl_certfile"] = str(self._tls.cert_file)
        self.base_url = f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"
        core.bound(
            self.host,
            self.port,
            scheme="https" if self._tls else "http",
            ca_file=str(self._tls.ca_file) if self._tls else None,
        )

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> Any:
            core.start()
            yield

        app = build_app(core, lifespan=lifespan)
        config = uvicorn.Config(
            app,
            http="h11",
            ws="none",
            lifespan="on",
            log_level="warning",
            access_log=False,  # info-level lines: uvicorn would still format them per request
            timeout_graceful_shutdown=3,
            **ssl_options,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="replicate-local-server",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the local Replicate server failed to start")
            time.sleep(0.005)
        import urllib.request

        context = self._tls.client_context() if self._tls is not None else None
        with urllib.request.urlopen(
            f"{self.base_url}/_local/health", timeout=10, context=context
        ) as resp:
            if resp.status != 200:
                raise RuntimeError("the local Replicate server is not healthy")
        return self

    def stop(self, *, graceful: bool = True) -> None:
        """Stop the server: cancel running predictions, drain webhooks, close the database."""
        if self.core is None:
            return
        if graceful:
            self.core.runner.shutdown()
        else:
            self.core.runner.abandon()
        if self._server is not None:
            self._server.should_exit = True
            if not graceful:
                self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.core.stop(graceful=graceful)
        self.core = None
        if self._tls is not None:
            self._tls.cleanup()

    def crash(self) -> None:
        """Stop abruptly, leaving running and queued predictions unfinished (restart tests)."""
        self.stop(graceful=False)

    @property
    def ca_file(self) -> str | None:
        """With ``tls=True``: the PEM bundle that trusts this server (``SSL_CERT_FILE``)."""
        return str(self._tls.ca_file) if self._tls is not None else None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ handle
    def _core(self) -> Core:
        if self.core is None:
            raise RuntimeError("the server is not running")
        return self.core

    def register(
        self,
        model: str,
        fn: Callable[..., Any],
        *,
        version_id: str | None = None,
        train: Callable[..., Any] | None = None,
        load: Callable[[Path], Callable[..., Any]] | None = None,
        **kwargs: Any,
    ) -> str:
        """Register a callable as ``owner/name``; returns the version id.

        ``version_id`` pins the version id (64 hex characters, e.g. the id of the real model
        version your code runs as ``"owner/name:<id>"``); by default it is a hash of the
        model's name, source and schema, so it changes when the code does. Other keyword
        arguments: ``concurrency=``, ``description=``, ``readme=``, ``official=``,
        ``version_key=``, ... (see ``Registry.register``), plus ``train=`` (the function
        trainings of this model run; it returns the weights) and ``load=`` (weights file ->
        the callable a trained version runs).
        """
        return self._core().register(
            model, fn, version_id=version_id, train=train, load=load, **kwargs
        )

    def sign_file_url(self, file_id: str, ttl: float = 3600) -> str:
        """A signed download URL for an uploaded file."""
        import urllib.parse

        core = self._core()
        params = core.files.sign_download(core.config.username, file_id, ttl)
        return f"{self.base_url}/v1/files/{file_id}/download?{urllib.parse.urlencode(params)}"

    # ------------------------------------------------------------------ test controls
    @property
    def faults(self) -> Any:
        """Fault injection (``add(...)``, ``list()``, ``remove(id)``, ``clear()``)."""
        return self._app_api().faults

    def add_fault(self, **fault: Any) -> Any:
        """Inject a fault (the ``POST /_local/faults`` fields); returns it (``.id``, ``.hits``).

        e.g. ``add_fault(path="/v1/account", status=429, retry_after=1, times=2)``,
        ``add_fault(operation="predictions.get", drop=True, times=1)``,
        ``add_fault(path="/v1/streams/*", sse_drop_after=3, times=1)``,
        ``add_fault(webhook_fail=500, times=2)``.
        """
        return self._app_api().fault_add(**fault)

    def requests(self) -> list[dict[str, Any]]:
        """The request log: method, path, query, chosen headers, status, time, duration (no tokens)."""
        return self._app_api().requests.list()

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._app_api().requests.clear()

    def webhook_deliveries(self, prediction_id: str | None = None) -> list[dict[str, Any]]:
        """Every webhook delivery attempt (of one prediction if given), with headers and body."""
        return self._core().webhooks.attempts(prediction_id)

    def hold(self, prediction_id: str) -> None:
        """Hold a prediction: not started while queued; paused before its next chunk or its end."""
        self._app_api().lifecycle(prediction_id, "hold")

    def release(self, prediction_id: str) -> None:
        """Release a held prediction."""
        self._app_api().lifecycle(prediction_id, "release")

    def emit(self, prediction_id: str, output: Any = ..., *, log: str | None = None) -> None:
        """Append an output chunk and/or a log line to a ``processing`` prediction now."""
        body: dict[str, Any] = {} if log is None else {"log": log}
        if output is not ...:
            body["output"] = output
        self._app_api().lifecycle(prediction_id, "emit", body)

    def complete(self, prediction_id: str, output: Any = ...) -> None:
        """Finish a prediction as ``succeeded`` (with ``output``, else what it emitted)."""
        self._app_api().lifecycle(
            prediction_id, "complete", {} if output is ... else {"output": output}
        )

    def fail(self, prediction_id: str, error: str = "Prediction failed") -> None:
        """Finish a prediction as ``failed`` with ``error``."""
        self._app_api().lifecycle(prediction_id, "fail", {"error": error})

    def abort(self, prediction_id: str) -> None:
        """End a prediction that has not started as ``aborted``."""
        self._app_api().lifecycle(prediction_id, "abort")

    def script(self, model: str, *outcomes: dict[str, Any]) -> None:
        """Queue outcomes for the next predictions of ``owner/name``, one each, e.g.
        ``{"error": "boom"}``, ``{"output": "Y"}``, ``{"hold": True}``, ``{"manual": True}``,
        ``{"logs": ["a", "b"], "output": [...]}`` (see ``controls.Outcome``)."""
        self._app_api().script(model, list(outcomes))

    def limits(self) -> dict[str, Any]:
        """The test-adjustable limits (page sizes, upload size, queue cap, retention, ...)."""
        return dict(self._app_api().limits())

    def set_limits(self, **limits: Any) -> dict[str, Any]:
        """Change limits: ``page_sizes={...}``, ``max_upload_size``, ``max_queue_depth``,
        ``retention``, ``file_expiry``, ``webhook_backoff_scale``, ``webhook_timeout``,
        ``rate_limits`` (``True`` or ``{"create_per_minute", "other_per_minute", "burst"}``:
        emulates the real limits on the virtual clock). ``reset()`` restores them."""
        return dict(self._app_api().set_limits(**limits))

    def wait_for_status(
        self, prediction_id: str, *statuses: str, timeout: float = 30
    ) -> dict[str, Any]:
        """Block until a prediction reaches one of ``statuses`` (default: any terminal one).

        Returns the stored row; raises TimeoutError naming the status it is stuck in.
        """
        wanted = set(statuses or ("succeeded", "failed", "canceled", "aborted"))
        core = self._core()
        deadline = time.monotonic() + timeout
        while True:
            row = core.store.get_prediction(prediction_id)
            if row is None:
                raise KeyError(prediction_id)
            if row["status"] in wanted:
                return row
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"prediction {prediction_id} is still {row['status']} after {timeout:g} s"
                )
            time.sleep(0.005)

    def advance_clock(self, duration: str | float) -> None:
        """Move the virtual clock forward (``"1h"`` or seconds)."""
        seconds = _duration(duration, "advance_clock", maximum=MAX_CLOCK_OFFSET)
        self._core().advance_clock(seconds)

    def reset(self, *, secrets: bool = False) -> None:
        """Clear predictions, files, user-created models, faults, scripted outcomes, the logs and
        the webhook outbox, and restore the limits.

        Registered models and the demos stay. Secrets are kept unless ``secrets=True``.
        """
        core = self._core()
        api = self._app_api()
        api.faults.clear()
        core.reset(secrets=secrets)
        api.reset_controls()

    @property
    def webhook_secret(self) -> str:
        """The ``whsec_...`` signing secret."""
        return self._core().webhooks.secret

    def _app_api(self) -> Any:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return (
            self._server.config.app.state.api
            if hasattr(self._server.config.app, "state")
            else self._server.config.loaded_app.app.state.api
        )


@contextlib.contextmanager
def serve(
    models: Mapping[str, Callable[..., Any]] | None = None,
    *,
    db: str = ":memory:",
    token: str | list[str] | None = None,
    test_controls: bool = False,
    retention: str | float | None = "1h",
    cog: Sequence[str] | Mapping[str, str] | None = None,
    tls: bool = False,
    **kwargs: Any,
) -> Iterator[BaseURL]:
    """Run a local server on a free loopback port; yields its base URL (``.server`` is the handle).

    ``cog`` serves Cog model directories (``{"owner/name": dir}``), as ``--cog`` does.
    ``tls=True`` serves HTTPS with a local CA, as ``--tls`` does (``.server.ca_file``).
    """
    server = LocalServer(
        models,
        db=db,
        token=token,
        test_controls=test_controls,
        retention=retention,
        cog=cog,
        tls=tls,
        **kwargs,
    )
    server.start()
    try:
        url = BaseURL(server.base_url)
        url.server = server
        yield url
    finally:
        server.stop()


def run_local(
    model: str, input: dict[str, Any], *, db: str | None = None, timeout: float = 600
) -> Any:
    """Run one prediction on an in-process server (the quickstart path); returns the output.

    ``db`` defaults to the on-disk database in the user's data directory. Raises
    RuntimeError with the model's error when the prediction does not succeed.
    """
    import httpx

    from .core import default_db_path

    with serve(db=db or str(default_db_path())) as url:
        headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}", "Prefer": "wait"}
        if ":" in model or "/" not in model:
            r = httpx.post(
                f"{url}/v1/predictions",
                json={"version": model, "input": input},
                headers=headers,
                timeout=timeout,
            )
        else:
            r = httpx.post(
                f"{url}/v1/models/{model}/predictions",
                json={"input": input},
                headers=headers,
                timeout=timeout,
            )
        if r.status_code >= 400:
            raise RuntimeError(r.json().get("detail", r.text))
        pred = r.json()
        while pred["status"] not in ("succeeded", "failed", "canceled", "aborted"):
            time.sleep(0.2)
            pred = httpx.get(pred["urls"]["get"], headers=headers, timeout=timeout).json()
        if pred["status"] != "succeeded":
            raise RuntimeError(pred.get("error") or f"prediction {pred['status']}")
        output = pred["output"]
        if isinstance(output, list) and output and all(isinstance(x, str) for x in output):
            schema = httpx.get(
                f"{url}/v1/models/{pred['model']}/versions/{pred['version']}", headers=headers
            ).json()
            out_schema = schema["openapi_schema"]["components"]["schemas"].get("Output", {})
            if out_schema.get("x-cog-array-display") == "concatenate":
                return "".join(output)
        return output
