"""The server's state and domain operations, shared by the HTTP app and the Python handle."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .demo_models import DEMO_MODELS, register_demo_models
from .fetch import OwnAddress
from .files import DEFAULT_EXPIRY, DEFAULT_MAX_UPLOAD, FileService
from .gate import DEFAULT_MAX_BODY, strict_dumps
from .hub import Hub
from .registry import Registry
from .runner import TERMINAL, Runner, recover
from .schema import output_is_iterator
from .store import Store
from .util import REMOTE_CONTROLS_REFUSED, Clock, is_loopback, iso, new_id
from .webhooks import WebhookSender, new_secret

if TYPE_CHECKING:
    from .cog import CogModel, CogWorker, CogWorkerPool

log = logging.getLogger("replicate.local")

#: Seconds without a heartbeat after which another server instance counts as gone.
INSTANCE_TIMEOUT = 30.0
#: Stream tokens of this many predictions are kept (computing one is an HMAC).
_STREAM_TOKENS_KEPT = 4096

HARDWARE = [
    {"sku": "cpu", "name": "CPU"},
    {"sku": "gpu-t4", "name": "Nvidia T4 GPU"},
    {"sku": "gpu-a40-small", "name": "Nvidia A40 GPU"},
    {"sku": "gpu-a40-large", "name": "Nvidia A40 (Large) GPU"},
]


def check_controls_bind(config: ServerConfig, host: str) -> None:
    """Raise ValueError when test controls would be served on a non-loopback address."""
    if config.test_controls and not config.allow_remote_controls and not is_loopback(host):
        raise ValueError(REMOTE_CONTROLS_REFUSED.format(host=host))


def default_db_path() -> Path:
    """``replicate/local-server/state.sqlite3`` in the platform's user data directory."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "replicate" / "local-server" / "state.sqlite3"


@dataclass
class ServerConfig:
    """Settings of one local server."""

    db: str = ":memory:"
    tokens: list[str] | None = None
    username: str = "local"
    account_name: str = "Local User"
    public_url: str | None = None
    test_controls: bool = False
    retention: float | None = 3600.0
    webhook_secret: str | None = None
    demo_models: bool = True
    max_upload_size: int = DEFAULT_MAX_UPLOAD
    max_body_size: int = DEFAULT_MAX_BODY
    """Largest request body (bytes) but uploads; larger ones get 413 (see ``gate``)."""
    file_expiry: float = DEFAULT_EXPIRY
    webhook_backoff: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    webhook_backoff_scale: float = 1.0
    webhook_throttle: float = 0.5
    keepalive: float = 15.0
    stream_urls: str = "iterator"  # or "always": every prediction gets urls.stream
    max_run_time: float | None = None  # default deadline (seconds) when no Cancel-After is sent
    sync_file_outputs: str = "url"  # or "data-uri": inline files in sync-mode create replies
    page_sizes: dict[str, int] = field(
        default_factory=lambda: {
            "predictions": 100,
            "files": 100,
            "models": 25,
            "versions": 100,
            "examples": 100,
        }
    )
    sweep_interval: float = 5.0
    max_queue_depth: int = 1000
    cog: list[str] | dict[str, str] | None = None
    """Cog model directories: ``OWNER/NAME=DIR`` values (``--cog``) or ``{owner/name: dir}``."""
    cog_idle_timeout: float | None = 600.0
    """Seconds a Cog worker may stay idle before it stops (None: never)."""
    cog_max_live_workers: int = 4
    """Live Cog runtime processes at most; the least recently used idle one is evicted."""
    cancel_grace: float = 10.0
    """Seconds a cancelled model that can stop (takes ``cancel_event``, is a generator or a
    coroutine) gets before the prediction is forced to ``canceled``; its concurrency slot
    stays taken until its thread really ends."""
    input_fetch_timeout: float = 60.0
    allow_remote_controls: bool = False
    """Allow ``test_controls`` on a non-loopback bind address (refused otherwise)."""
    """Seconds to download one remote (http/https) file input, in all."""


def _warm_up(worker: CogWorker) -> Callable[[], None]:
    """A ``keep_warm`` hook: start the Cog worker now; a failed setup is only logged (its
    predictions fail with the setup error and logs)."""

    def keep_warm() -> None:
        try:
            worker.start()
        except Exception as exc:
            log.warning("%s: setup failed while warming up: %s", worker.model.owner_name, exc)

    return keep_warm


class Core:
    """Store, registry, runner, files and webhooks of one server."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.clock = Clock()
        self._tmp: str | None = None
        if config.db == ":memory:":
            self._tmp = tempfile.mkdtemp(prefix="replicate-local-")
            blob_dir = Path(self._tmp) / "blobs"
        else:
            # Absolute: the blob store and the checkpoint thread open their paths later, and a
            # model may change the process's directory meanwhile.
            db_path = Path(os.path.abspath(Path(config.db).expanduser()))
            db_path.parent.mkdir(parents=True, exist_ok=True)
            blob_dir = db_path.parent / "blobs"
            config.db = str(db_path)
        self.store = Store(config.db)
        self.hub = Hub()
        # Predictions created without a webhook and not finished yet: their changes need no
        # read of the row to find one.
        self._no_webhook: set[str] = set()
        self._stream_tokens: dict[str, str] = {}  # see stream_token
        self.registry = Registry(self.store, self.clock.now)
        secret = config.webhook_secret or self.store.get_setting("webhook_secret") or new_secret()
        self.store.set_setting("webhook_secret", secret)
        files_key = self.store.get_setting("files_key") or secrets.token_hex(32)
        self.store.set_setting("files_key", files_key)
        self.stream_key = files_key.encode()
        self.files = FileService(
            self.store,
            blob_dir,
            bytes.fromhex(files_key),
            self.clock.now,
            max_upload_size=config.max_upload_size,
            expiry=config.file_expiry,
        )
        self.webhooks = WebhookSender(
            self.store,
            secret,
            backoff=config.webhook_backoff,
            backoff_scale=config.webhook_backoff_scale,
            throttle=config.webhook_throttle,
        )
        self.runner = Runner(self.store, self.registry, self.files, self.clock, self._on_change)
        self.webhooks.refuse = self._refuse_webhook
        self.runner.max_queue_depth = config.max_queue_depth
        self.runner.cancel_grace = config.cancel_grace
        self.runner.fetch_timeout = config.input_fetch_timeout
        if config.public_url:
            self.runner.own.add_origin(config.public_url)
        self.instance_id = secrets.token_hex(8)
        live = self._live_instances()
        self.store.execute(
            "INSERT INTO instances (id, pid, host, heartbeat) VALUES (?, ?, ?, ?)",
            (self.instance_id, os.getpid(), socket.gethostname(), time.time()),
        )
        self.recovered = recover(self.store, self.clock.now(), live)
        for pid in self.recovered:
            self._on_change(pid, "completed")
        if config.demo_models:
            register_demo_models(self.registry)
            self._seed_examples()
        self.cog: CogWorkerPool | None = None
        self._cog_trainers: list[CogWorker] = []
        if config.cog:
            try:
                self._attach_cog(config.cog)
            except BaseException:
                self._close_after_failed_init()
                raise
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.started = False
        #: The server's own origin once it listens (``bound``), e.g. ``https://127.0.0.1:5080``.
        self.self_url: str | None = None
        #: With TLS: the CA bundle that trusts this server (given to Cog runtimes).
        self.ca_file: str | None = None

    @property
    def own(self) -> OwnAddress:
        """This server's addresses (nothing it fetches or calls back may target /_local)."""
        return self.runner.own

    def _refuse_webhook(self, url: str) -> str | None:
        from .fetch import outbound_problem

        return outbound_problem(url, self.runner.own, "a webhook")

    def bound(
        self, host: str, port: int, *, scheme: str = "http", ca_file: str | None = None
    ) -> None:
        """Record the socket's address (``LocalServer``, ``replicate serve``); ``ca_file``:
        the CA bundle that trusts it when it serves HTTPS."""
        self.runner.own.add_bind(host, port)
        local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        local = f"[{local}]" if ":" in local else local
        self.self_url = f"{scheme}://{local}:{port}"
        self.ca_file = ca_file

    def cog_weights_env(self, weights: str) -> dict[str, str]:
        """The environment a trained Cog version's runtime gets for its ``weights`` file:
        ``COG_WEIGHTS`` as a URL this server serves, as on the platform (see
        ``catalogue/weights.py``), and with TLS the CA bundle that trusts it."""
        from .catalogue.weights import weights_url

        url = weights_url(self, weights)
        if url is None:
            return {}
        env = {"COG_WEIGHTS": url}
        if self.ca_file and url.startswith("https:"):
            env.update(SSL_CERT_FILE=self.ca_file, REQUESTS_CA_BUNDLE=self.ca_file)
        return env

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start background work (webhook delivery, janitor)."""
        if self.started:
            return
        self.started = True
        self.webhooks.start()
        self._sweeper = threading.Thread(
            target=self._sweep_loop, name="replicate-local-janitor", daemon=True
        )
        self._sweeper.start()

    def stop(self, *, graceful: bool = True) -> None:
        """Stop: cancel running predictions, drain webhooks, close the database."""
        self._stop.set()
        if graceful:
            self.runner.shutdown()
        else:
            self.runner.abandon()
        self._stop_cog_workers()
        if self.started:
            self.webhooks.stop(drain=5.0 if graceful else 0.0)
        self.store.execute("DELETE FROM instances WHERE id = ?", (self.instance_id,))
        self.store.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _close_after_failed_init(self) -> None:
        """Undo ``__init__`` when a ``--cog`` directory cannot be registered."""
        self._stop_cog_workers()
        try:
            self.store.execute("DELETE FROM instances WHERE id = ?", (self.instance_id,))
        finally:
            self.store.close()
            if self._tmp:
                shutil.rmtree(self._tmp, ignore_errors=True)

    def _stop_cog_workers(self) -> None:
        if self.cog is not None:
            self.cog.stop_all()
        trainers, self._cog_trainers = self._cog_trainers, []
        for worker in trainers:
            worker.close()

    def _live_instances(self) -> set[str]:
        """Other servers using this database that are still running (fresh heartbeat, live pid)."""
        live: set[str] = set()
        host = socket.gethostname()
        for row in self.store.query("SELECT id, pid, host, heartbeat FROM instances"):
            alive = row["heartbeat"] > time.time() - INSTANCE_TIMEOUT
            if alive and row["host"] == host:
                try:
                    os.kill(row["pid"], 0)
                except ProcessLookupError:
                    alive = False
                except OSError:
                    pass
            if alive:
                live.add(row["id"])
            else:
                self.store.execute("DELETE FROM instances WHERE id = ?", (row["id"],))
        return live

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.config.sweep_interval):
            try:
                self.store.execute(
                    "UPDATE instances SET heartbeat = ? WHERE id = ?",
                    (time.time(), self.instance_id),
                )
                self.sweep()
            except Exception:  # pragma: no cover - keep the janitor alive
                log.exception("janitor failed")

    def sweep(self) -> None:
        """Apply retention (data removal) and file expiry now."""
        if self.config.retention is not None:
            cutoff = self.clock.now() - self.config.retention
            rows = self.store.query(
                "SELECT id FROM predictions WHERE data_removed = 0 AND is_example = 0 "
                "AND completed_at IS NOT NULL AND completed_at <= ?",
                (cutoff,),
            )
            for row in rows:
                self.store.update_prediction(
                    row["id"], data_removed=1, input={}, output=None, logs=""
                )
                self.store.execute("DELETE FROM events WHERE prediction_id = ?", (row["id"],))
                self.files.remove_prediction_outputs(row["id"])
                self.webhooks.remove_data(row["id"])
        self.files.sweep()

    def reset(self, *, secrets: bool = False) -> None:
        """Clear predictions, files, user-created models, webhook state, deployments and
        trained versions (see LocalServer.reset)."""
        self.runner.cancel_all()
        rows = self.store.query("SELECT id FROM predictions WHERE is_example = 0")
        for row in rows:
            self.files.remove_prediction_outputs(row["id"])
        for f in self.store.query(
            "SELECT owner, id FROM files WHERE kind = 'upload' AND deleted = 0"
        ):
            self.files.delete_upload(f["owner"], f["id"])
        self.store.execute(
            "DELETE FROM events WHERE prediction_id IN (SELECT id FROM predictions WHERE is_example = 0)"
        )
        self.store.execute("DELETE FROM predictions WHERE is_example = 0")
        self.store.execute(
            "DELETE FROM versions WHERE (owner, name) IN (SELECT owner, name FROM models WHERE source = 'user')"
        )
        self.store.execute("DELETE FROM models WHERE source = 'user'")
        self.store.execute("DELETE FROM webhook_outbox")
        self.store.execute("DELETE FROM webhook_attempts")
        if secrets:
            self.webhooks.secret = new_secret()
            self.store.set_setting("webhook_secret", self.webhooks.secret)
        from . import catalogue

        catalogue.reset(self)

    def advance_clock(self, seconds: float) -> None:
        """Move the virtual clock forward and apply what became due."""
        self.clock.advance(seconds)
        self.sweep()
        self.runner.check_deadlines()

    # ------------------------------------------------------------------ registration
    def register(
        self,
        model: str,
        fn: Callable[..., Any],
        *,
        train: Callable[..., Any] | None = None,
        load: Callable[[Path], Callable[..., Any]] | None = None,
        **kwargs: Any,
    ) -> str:
        """Register a callable (see ``Registry.register``); returns the version id.

        ``train``: the model's training function (trainings of ``model`` run it; it returns
        the weights). ``load``: turns a weights file into the callable a trained version
        runs; without it, trained versions run ``fn`` (given ``weights=`` when it takes it).
        """
        if load is not None and train is None:
            raise ValueError("load= needs train= (the training function)")
        pinned = kwargs.get("version_id")
        taken = self.registry.get_version(pinned) if isinstance(pinned, str) else None
        if taken is not None and f"{taken['owner']}/{taken['name']}" != model:
            # Version ids are global (``POST /v1/predictions`` takes the id alone).
            raise ValueError(f"version {pinned} is a version of {taken['owner']}/{taken['name']}")
        version_id = self.registry.register(model, fn, **kwargs)
        if train is not None:
            from .catalogue import register_trainer

            register_trainer(self, model, train, load=load)
        return version_id

    # ------------------------------------------------------------------ Cog models
    def _attach_cog(self, specs: list[str] | dict[str, str]) -> None:
        """Serve the Cog directories ``specs`` (``CogDirError``, a ``ValueError``, if one is bad)."""
        from .cog import CogDirError, CogWorkerPool, parse_cog_option

        if not isinstance(specs, dict):
            names = []
            for spec in specs:
                try:
                    names.append(parse_cog_option(spec)[0])
                except CogDirError as exc:
                    msg = str(exc)
                    raise CogDirError(
                        msg if msg.startswith("--cog") else f"--cog {spec}: {msg}"
                    ) from None
            for name in names:
                if names.count(name) > 1:
                    raise CogDirError(f"--cog {name} is given more than once")
        pool = CogWorkerPool(
            max_live=self.config.cog_max_live_workers,
            idle_timeout=self.config.cog_idle_timeout,
            weights_env=self.cog_weights_env,
        )
        self.cog = pool
        for model in pool.attach_all(self.registry, specs):
            worker = pool.get(model)
            impl = self.registry.impl(model.version_id)
            if impl is not None:
                # Deployments with min_instances >= 1 pre-start the worker through this hook.
                impl.fn.keep_warm = _warm_up(worker)  # type: ignore[attr-defined]
            if model.train_ref is not None:
                self._register_cog_trainer(model)

    def _register_cog_trainer(self, model: CogModel) -> None:
        """Trainings of a Cog model with ``train:`` run in Cog's train mode (docs/local-server.md, "Your own Cog models")."""
        import io

        from .catalogue import catalogue_of, register_trainer
        from .cog import CogWorker, cog_callable, trained_model

        pool = self.cog
        assert pool is not None
        worker = CogWorker(model, mode="train", **pool.worker_options)
        self._cog_trainers.append(worker)
        run_training = cog_callable(worker)

        def train(cancel_event: threading.Event | None = None, **inputs: Any) -> Any:
            output = run_training(cancel_event=cancel_event, **inputs)
            if cancel_event is not None and cancel_event.is_set():
                return None
            weights = output.get("weights") if isinstance(output, dict) else output
            if weights is None:
                raise RuntimeError("the training returned no weights")
            if hasattr(weights, "read"):  # an open (already unlinked) file: keep its name
                with weights:
                    buf = io.BytesIO(weights.read())
                buf.name = Path(getattr(weights, "name", "") or "weights").name
                return buf
            return weights

        def load(weights: Path) -> Callable[..., Any]:
            trained_worker = pool.get(trained_model(model, weights))
            fn = cog_callable(trained_worker)
            fn.keep_warm = _warm_up(trained_worker)  # type: ignore[attr-defined]
            return fn

        register_trainer(self, model.version_id, train, load=load)
        # Validate training input against the model's own TrainingInput (the wrapper above
        # takes ``**inputs``, so it has no signature to derive it from).
        training_input = model.component("TrainingInput")
        if training_input:
            doc = json.loads(json.dumps(model.schema))
            schemas = doc["components"]["schemas"]
            schemas["Input"] = training_input
            schemas["Output"] = model.component("TrainingOutput")
            catalogue_of(self).trainers[model.version_id].doc = doc

    def _seed_examples(self) -> None:
        for spec in DEMO_MODELS:
            model = spec["model"]
            if self.store.one(
                "SELECT id FROM predictions WHERE model = ? AND is_example = 1", (model,)
            ):
                continue
            owner, name = model.split("/")
            version = self.registry.latest_version(owner, name)
            if version is None:
                continue
            inp, out = spec["example"]
            now = self.clock.now()
            self.store.insert_prediction(
                {
                    "id": new_id(),
                    "account": owner,
                    "model": model,
                    "version": version["id"],
                    "status": "succeeded",
                    "input": inp,
                    "output": out,
                    "logs": "",
                    "metrics": {"predict_time": 0.01, "total_time": 0.02},
                    "created_at": now - 0.02,
                    "started_at": now - 0.01,
                    "completed_at": now,
                    "is_example": 1,
                    "stream": int(output_is_iterator(version["openapi_schema"])),
                }
            )

    # ------------------------------------------------------------------ predictions
    def stream_token(self, pid: str) -> str:
        """Opaque token of a prediction's SSE URL."""
        token = self._stream_tokens.get(pid)
        if token is None:
            token = self._signed_stream_token(pid)
            # Those of the latest predictions are kept: their streams are read next.
            if len(self._stream_tokens) >= _STREAM_TOKENS_KEPT:
                self._stream_tokens.clear()
            self._stream_tokens[pid] = token
        return token

    def _signed_stream_token(self, pid: str) -> str:
        import hashlib
        import hmac

        return (
            pid
            + hmac.new(self.stream_key, f"stream {pid}".encode(), hashlib.sha256).hexdigest()[:16]
        )

    def pid_from_stream_token(self, token: str) -> str | None:
        """The prediction id behind a stream token, if valid."""
        import hmac

        if len(token) != 42:
            return None
        pid = token[:26]
        expected = self._stream_tokens.get(pid) or self._signed_stream_token(pid)
        ok = hmac.compare_digest(expected.encode(), token.encode("utf-8", "replace"))
        return pid if ok else None

    def prediction_json(
        self, row: dict[str, Any], origin: str, *, inline_files: bool = False
    ) -> dict[str, Any]:
        """The API's prediction object for a decoded row (``inline_files``: files as ``data:`` URIs)."""
        pid = row["id"]
        training = row["kind"] == "training"
        base = f"{origin}/v1/{'trainings' if training else 'predictions'}/{pid}"
        urls: dict[str, str] = {
            "cancel": f"{base}/cancel",
            "get": base,
            "web": f"{origin}/web/p/{pid}",
        }
        if row["stream"] and not row["data_removed"]:
            urls["stream"] = f"{origin}/v1/streams/{self.stream_token(pid)}"
        out: dict[str, Any] = {
            "id": pid,
            "model": row["model"],
            "version": row["version"],
            "input": row["input"],
            "logs": row["logs"] or "",
            "output": self.files.render(
                self.files.inline(row["output"]) if inline_files else row["output"], origin
            ),
            "data_removed": bool(row["data_removed"]),
            "error": row["error"],
            "source": row["source"],
            "status": row["status"],
            "created_at": iso(row["created_at"]),
            "urls": urls,
        }
        if row["started_at"] is not None:
            out["started_at"] = iso(row["started_at"])
        if row["completed_at"] is not None:
            out["completed_at"] = iso(row["completed_at"])
        if row["metrics"] is not None:
            out["metrics"] = row["metrics"]
        if row["deadline"] is not None:
            out["deadline"] = iso(row["deadline"])
        if row["deployment"]:
            out["deployment"] = row["deployment"]
        if row.get("extra") and "stream" in row["extra"]:
            out["stream"] = row["extra"]["stream"]
        if training:
            # The training object's shape (spec, recordings): urls get + cancel only, no
            # data_removed nor deployment (``object_json`` adds ``completed_at: null``).
            out.pop("data_removed", None)
            out.pop("deployment", None)
            out["urls"] = {k: v for k, v in urls.items() if k in ("get", "cancel")}
        return out

    def object_json(self, row: dict[str, Any], origin: str) -> dict[str, Any]:
        """The object a GET shows for a row: a prediction, or a training as ``trainings.get``
        shows it (``completed_at`` always present, null until it ends). Webhook bodies too."""
        out = self.prediction_json(row, origin)
        if row["kind"] == "training":
            out.setdefault("completed_at", None)
        return out

    def _on_change(self, pid: str, event: str) -> None:
        if event == "status":  # no one waits for a start (streams wait for events, waits
            return  # for the end)
        self.hub.notify(pid)
        if pid in self._no_webhook:  # known without reading the row back (every change)
            if event == "completed":
                self._no_webhook.discard(pid)
            return
        row = self.store.get_prediction(pid)
        if row is None or not row["webhook"]:
            return
        body = strict_dumps(self.object_json(row, row["origin"])).encode()
        self.webhooks.enqueue(pid, row["webhook"], event, body, row["webhook_events_filter"])

    def create_prediction(
        self,
        *,
        account: str,
        version: dict[str, Any],
        input: dict[str, Any],
        origin: str,
        webhook: str | None = None,
        webhook_events_filter: list[str] | None = None,
        deadline_seconds: float | None = None,
        deployment: str | None = None,
        stream: bool | None = None,
    ) -> dict[str, Any]:
        """Insert and queue a prediction; returns the decoded row.

        ``stream`` is the deprecated request field: echoed in the object, otherwise ignored.
        """
        pid = new_id()
        now = self.clock.now()
        if deadline_seconds is None and self.config.max_run_time is not None:
            deadline_seconds = self.config.max_run_time
        has_stream = (
            output_is_iterator(version["openapi_schema"]) or self.config.stream_urls == "always"
        )
        impl = self.registry.impl(version["id"])
        # An inline model's row is committed with its neighbours' (a plain
        # one's ends before this returns: its row is then written once, finished); the reply
        # waits for that commit (``Store.durable``). Any other is committed now, before the
        # reply acknowledges it.
        stored = self.store.insert_prediction(
            {
                "id": pid,
                "account": account,
                "model": f"{version['owner']}/{version['name']}",
                "version": version["id"],
                "deployment": deployment,
                "status": "starting",
                "input": input,
                "created_at": now,
                "deadline": now + deadline_seconds if deadline_seconds is not None else None,
                "webhook": webhook,
                "webhook_events_filter": webhook_events_filter,
                "stream": int(has_stream),
                "extra": {"stream": stream} if stream is not None else None,
                "origin": origin,
                "instance": self.instance_id,
            },
            defer=impl is not None and impl.inline,
        )
        if webhook is None:
            self._no_webhook.add(pid)
        # The reply shows the prediction as accepted (``starting``), as the real API does even
        # for fast models: the row as stored, before the runner may pick it up.
        row = stored or self.store.get_prediction(pid)
        assert row is not None
        self._on_change(pid, "start")
        self.runner.submit(pid, row, version)
        return row

    def get_prediction(self, account: str, pid: str) -> dict[str, Any] | None:
        """A prediction of ``account`` (examples are visible to everyone)."""
        row = self.store.get_prediction(pid)
        if row is None or (row["account"] != account and not row["is_example"]):
            return None
        return row

    def cancel_prediction(self, pid: str) -> None:
        """Cancel if active; a no-op for terminal predictions."""
        self.runner.cancel(pid)

    def is_terminal(self, pid: str) -> bool:
        """Whether a prediction reached a terminal state."""
        row = self.store.one("SELECT status FROM predictions WHERE id = ?", (pid,))
        return row is None or row["status"] in TERMINAL
