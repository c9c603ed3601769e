"""Trainings: create, list, get, cancel, and trained versions (docs/local-server.md, "Models").

A training runs a *trainer* against a base version and, on success, adds a new version to
the ``destination`` model (which must exist and belong to the caller). Trainers:

* callables registered with :func:`register_trainer` (for a model, or for one version);
  the bundled ``local-demo/hello-trainable`` has one: ``train(greeting, delay_ms)`` writes
  ``{"greeting": ...}`` as its weights and the trained version answers ``{greeting} {text}``;
* the *emulated trainer* for every other version: after a short delay it succeeds, and the
  weights are a JSON file holding the training input.

The new version keeps the base version's schema. Its id is the SHA-256 of the base version
id, the destination and the weights' SHA-256. It runs the trainer's ``load(weights)``
callable when there is one, else the base callable (given ``weights=<Path>`` when it takes a
``weights`` argument). ``output`` is ``{"version": "owner/name:<id>", "weights": <URL>}``.

Trainings share the prediction lifecycle (states, logs, cancel, metrics, SSE log,
webhooks) through the core's runner; rows are ``kind = 'training'`` in the predictions table.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import ApiError, input_validation, not_found
from ..routes_base import json_response, keyset_page, webhook_fields
from ..routing import Wrap, api_of
from ..schema import (
    Input,
    _resolve,
    build_input_schema,
    build_output_schema,
    canonical_json,
    cog_openapi_document,
    file_inputs,
    validate_input,
)
from ..util import new_id
from ._common import Catalogue, catalogue_of, json_type, require_object

if TYPE_CHECKING:
    from ..core import Core
    from ..registry import ModelImpl

log = logging.getLogger("replicate.local")

DESTINATION_MISSING = "The specified training destination does not exist"
EMULATED = "emulated"
EMULATED_DELAY = 0.05


# ---------------------------------------------------------------------------- trainers


@dataclass
class Trainer:
    """A training function plus how a trained version runs."""

    key: str
    train: Callable[..., Any]
    load: Callable[[Path], Callable[..., Any]] | None = None
    doc: dict[str, Any] | None = None
    """The trainer's input document (``components.schemas.Input`` = training input)."""

    @property
    def accepts_cancel_event(self) -> bool:
        try:
            return "cancel_event" in inspect.signature(self.train).parameters
        except (TypeError, ValueError):
            return False


def _trainer_doc(fn: Callable[..., Any]) -> dict[str, Any] | None:
    try:
        input_schema, enums = build_input_schema(fn)
        return cog_openapi_document(input_schema, build_output_schema(fn), enums)
    except Exception:  # pragma: no cover - unusual signatures: no validation
        log.warning("could not build an input schema for trainer %r", fn)
        return None


def register_trainer(
    core: Core,
    target: str,
    train: Callable[..., Any],
    *,
    load: Callable[[Path], Callable[..., Any]] | None = None,
) -> None:
    """Use ``train`` for trainings of ``target`` (``owner/name`` or a version id).

    ``train(**training_input)`` returns the weights: a ``Path``, ``bytes``, ``str`` (text)
    or a JSON-able ``dict``/``list``. It may take ``cancel_event`` to stop early. ``load``,
    if given, turns the weights file into the callable the trained version runs.
    """
    cat = catalogue_of(core)
    trainer = Trainer(key=target, train=train, load=load, doc=_trainer_doc(train))
    cat.trainers[target] = trainer
    advertise(core, target, trainer)


TRAINING_OUTPUT = {
    "title": "TrainingOutput",
    "type": "object",
    "properties": {"weights": {"title": "Weights", "type": "string", "format": "uri"}},
    "required": ["weights"],
}


def advertise(core: Core, target: str, trainer: Trainer) -> None:
    """Add ``TrainingInput``/``TrainingOutput`` to the schemas of the versions ``target`` names."""
    if trainer.doc is None:
        return
    comps = trainer.doc.get("components", {}).get("schemas", {})
    if "Input" not in comps:
        return
    owner, _, name = target.partition("/")
    rows = core.store.query(
        "SELECT id, openapi_schema FROM versions WHERE id = ? OR (owner = ? AND name = ?)",
        (target, owner, name),
    )
    for row in rows:
        doc = json.loads(row["openapi_schema"])
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        if "TrainingInput" in schemas:
            continue
        schemas["TrainingInput"] = dict(comps["Input"], title="TrainingInput")
        schemas["TrainingOutput"] = TRAINING_OUTPUT
        for key, value in comps.items():
            if key not in ("Input", "Output") and key not in schemas:
                schemas[key] = value
        core.store.execute(
            "UPDATE versions SET openapi_schema = ? WHERE id = ?", (canonical_json(doc), row["id"])
        )


def _emulated_train(cancel_event: threading.Event | None = None, **training_input: Any) -> Any:
    """The emulated trainer: succeed after a short delay; weights are the input as JSON."""
    print("emulated training: no train() for this version, recording the input as weights")
    if cancel_event is not None and cancel_event.wait(EMULATED_DELAY):
        return None
    return training_input


def train_hello(
    greeting: str = Input(default="hello", description="The greeting the trained version uses"),
    delay_ms: int = Input(
        default=0, ge=0, le=60000, description="Simulated training time in milliseconds"
    ),
    cancel_event: threading.Event | None = None,
) -> Any:
    """Trainer of ``local-demo/hello-trainable``: the weights hold the greeting."""
    print(f"training greeting {greeting!r}")
    if delay_ms and cancel_event is not None and cancel_event.wait(delay_ms / 1000):
        return None
    print("training done")
    return {"greeting": greeting}


def load_hello(weights: Path) -> Callable[..., str]:
    """The predict function of a trained ``hello-trainable`` version."""
    greeting = str(json.loads(Path(weights).read_text())["greeting"])

    def hello_trained(text: str = Input(description="Text to greet")) -> str:
        return f"{greeting} {text}"

    return hello_trained


BUILTIN_TRAINERS: dict[str, tuple[Callable[..., Any], Callable[[Path], Callable[..., Any]]]] = {
    "local-demo/hello-trainable": (train_hello, load_hello),
}


# ---------------------------------------------------------------------------- versions


def _impl_for(owner: str, name: str, fn: Callable[..., Any], concurrency: int) -> ModelImpl:
    from ..registry import ModelImpl

    return ModelImpl.for_callable(owner, name, fn, concurrency)


def _attach_impl(core: Core, version_id: str, impl: ModelImpl) -> None:
    """Make ``version_id`` runnable by ``impl`` (the registry keeps callables in memory)."""
    core.registry.attach_impl(version_id, impl)


def _weights_bytes(result: Any) -> tuple[bytes, str]:
    if isinstance(result, PurePath):
        return Path(result).read_bytes(), Path(result).name or "weights"
    if isinstance(result, (bytes, bytearray)):
        return bytes(result), "weights.bin"
    if isinstance(result, str):
        return result.encode(), "weights.txt"
    if hasattr(result, "read") and callable(result.read):
        data = result.read()
        name = Path(getattr(result, "name", "") or "weights").name
        return (data.encode() if isinstance(data, str) else bytes(data)), name
    return json.dumps(result, sort_keys=True, indent=2).encode(), "weights.json"


class Trained:
    """Trained versions of one core: creation, materialised weights, restore after restart."""

    def __init__(self, core: Core, cat: Catalogue) -> None:
        self.core = core
        self.cat = cat

    def trainer_for(self, version: dict[str, Any]) -> Trainer:
        """The trainer of a version: registered for it or its model, else inherited from the
        version it was trained from, else the emulated trainer."""
        seen: set[str] = set()
        v: dict[str, Any] | None = version
        while v is not None and v["id"] not in seen:
            seen.add(v["id"])
            for key in (v["id"], f"{v['owner']}/{v['name']}"):
                if key in self.cat.trainers:
                    return self.cat.trainers[key]
            row = self.core.store.one(
                "SELECT base_version FROM trained_versions WHERE version_id = ?", (v["id"],)
            )
            v = self.core.registry.get_version(row["base_version"]) if row else None
        return Trainer(key=EMULATED, train=_emulated_train)

    def weights_path(self, version_id: str, name: str, data: bytes) -> Path:
        """The trained version's weights as a file (written from the stored bytes if missing)."""
        d = self.cat.weights_dir() / version_id
        d.mkdir(parents=True, exist_ok=True)
        path = d / (Path(name).name or "weights")
        if not path.exists() or path.read_bytes() != data:
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path

    def _build_impl(
        self, version_id: str, base_id: str, destination: str, trainer_key: str, weights: Path
    ) -> ModelImpl | None:
        base = self.core.registry.impl(base_id)
        if base is None:
            return None
        owner, name = destination.split("/", 1)
        trainer = self.cat.trainers.get(trainer_key)
        if trainer is not None and trainer.load is not None:
            return _impl_for(owner, name, trainer.load(weights), base.concurrency)
        fn, params = base.fn, base.params
        if isinstance(fn, functools.partial) and "weights" in fn.keywords:
            # The base is itself trained: start again from its code, with the new weights.
            fn, params = fn.func, params | {"weights"}
        impl = _impl_for(owner, name, fn, base.concurrency)
        if "weights" in params:
            # The base code, given the trained weights (as Cog passes them to setup()).
            impl.fn = functools.partial(fn, weights=weights)
            impl.params = params - {"weights"}
        return impl

    def add(
        self,
        base: dict[str, Any],
        destination: str,
        trainer_key: str,
        data: bytes,
        weights_name: str,
        training_id: str,
    ) -> tuple[str, Path]:
        """Add the trained version to ``destination``; returns (version id, weights path)."""
        sha = hashlib.sha256(data).hexdigest()
        vid = hashlib.sha256(f"{base['id']}\n{destination}\n{sha}".encode()).hexdigest()
        path = self.weights_path(vid, weights_name, data)
        impl = self._build_impl(vid, base["id"], destination, trainer_key, path)
        if impl is None:
            raise RuntimeError("the base version's source is no longer available")
        owner, name = destination.split("/", 1)
        store = self.core.store
        now = self.core.clock.now()
        _attach_impl(self.core, vid, impl)
        with store.transaction():
            if store.one("SELECT id FROM versions WHERE id = ?", (vid,)) is None:
                store.execute(
                    "INSERT INTO versions (id, owner, name, created_at, cog_version, openapi_schema) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        vid,
                        owner,
                        name,
                        now,
                        base.get("cog_version"),
                        canonical_json(base["openapi_schema"]),
                    ),
                )
            else:  # the same weights again: make it the latest version again
                store.execute("UPDATE versions SET created_at = ? WHERE id = ?", (now, vid))
            store.execute(
                "INSERT OR REPLACE INTO trained_versions (version_id, base_version, destination, "
                "training_id, trainer, weights, weights_name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (vid, base["id"], destination, training_id, trainer_key, data, weights_name, now),
            )
        return vid, path

    def restore(self) -> int:
        """Re-attach the callables of trained versions stored by an earlier run; returns the count."""
        n = 0
        rows = self.core.store.query(
            "SELECT * FROM trained_versions ORDER BY created_at, version_id"
        )
        for row in rows:
            vid = row["version_id"]
            if self.core.registry.impl(vid) is not None:
                continue
            if self.core.store.one("SELECT id FROM versions WHERE id = ?", (vid,)) is None:
                continue
            path = self.weights_path(vid, row["weights_name"], bytes(row["weights"]))
            impl = self._build_impl(
                vid, row["base_version"], row["destination"], row["trainer"], path
            )
            if impl is not None:
                _attach_impl(self.core, vid, impl)
                n += 1
        return n

    def is_training_base(self, version_id: str) -> bool:
        """Whether an unfinished training runs on ``version_id``."""
        return (
            self.core.store.one(
                "SELECT id FROM predictions WHERE kind = 'training' AND version = ? "
                "AND status IN ('starting', 'processing') LIMIT 1",
                (version_id,),
            )
            is not None
        )


# ---------------------------------------------------------------------------- running


def _resolve_inputs(
    doc: dict[str, Any] | None, given: dict[str, Any], fn: Callable[..., Any]
) -> dict[str, Any]:
    """Keyword arguments for a trainer: given values, else schema defaults, else None."""
    sig = inspect.signature(fn)
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    kwargs: dict[str, Any] = {}
    props = (
        ((doc or {}).get("components", {}).get("schemas", {}).get("Input") or {}).get(
            "properties", {}
        )
        if doc
        else {}
    )
    for name, prop in props.items():
        p = _resolve(doc or {}, prop)
        if name in given:
            kwargs[name] = given[name]
        elif "default" in p:
            kwargs[name] = p["default"]
        else:
            kwargs[name] = None
    for k, v in given.items():
        if k not in kwargs and (var_kw or k in sig.parameters) and k != "cancel_event":
            kwargs[k] = v
    return {k: v for k, v in kwargs.items() if var_kw or k in sig.parameters}


def _to_path(core: Core, value: Any, directory: Path) -> Any:
    """A file input (``data:`` URI, this server's file or delivery URL, other URL) as a Path."""
    if not isinstance(value, str):
        return value
    from ..fetch import input_file_path

    directory.mkdir(parents=True, exist_ok=True)
    return input_file_path(
        core.files, value, directory, own=core.runner.own, timeout=core.runner.fetch_timeout
    )


def _trainer_callable(
    trained: Trained, trainer: Trainer, base: dict[str, Any], destination: str, pid: str
) -> Callable[..., Any]:
    def run_training(cancel_event: threading.Event | None = None, **given: Any) -> Any:
        with tempfile.TemporaryDirectory(prefix=f"replicate-local-{pid}-") as tmp:
            return _run(Path(tmp), cancel_event, given)

    def _run(tmp: Path, cancel_event: threading.Event | None, given: dict[str, Any]) -> Any:
        kwargs = _resolve_inputs(trainer.doc, given, trainer.train)
        for name, is_list in (file_inputs(trainer.doc) if trainer.doc else {}).items():
            value = kwargs.get(name)
            if value is not None:
                kwargs[name] = (
                    [_to_path(trained.core, v, tmp / str(i)) for i, v in enumerate(value)]
                    if is_list
                    else _to_path(trained.core, value, tmp)
                )
        if trainer.accepts_cancel_event:
            kwargs["cancel_event"] = cancel_event
        result = trainer.train(**kwargs)
        if cancel_event is not None and cancel_event.is_set():
            return None
        data, name = _weights_bytes(result)
        vid, path = trained.add(base, destination, trainer.key, data, name, pid)
        print(f"created version {destination}:{vid}")
        return {"version": f"{destination}:{vid}", "weights": path}

    return run_training


def _submit(core: Core, pid: str, impl: ModelImpl, queue: str, inp: dict[str, Any]) -> None:
    """Queue a training on the core's runner, in its own FIFO queue per base version."""
    from ..runner import Run

    row = core.store.get_prediction(pid)
    assert row is not None
    run = Run(
        pid=pid,
        version=queue,
        impl=impl,
        created_at=row["created_at"],
        input=inp,
        iterator=False,
    )
    core.runner.submit_run(run)


# ---------------------------------------------------------------------------- handlers


def training_json(
    core: Core, row: dict[str, Any], origin: str, *, created: bool = False
) -> dict[str, Any]:
    """The API's training object: the prediction object in the shape trainings have.

    As in the spec and the recordings: ``urls`` holds only ``get`` and ``cancel`` (both on
    ``/v1/trainings``), there is no ``data_removed``, and ``completed_at`` is always present
    (null until the end), except in the create reply, which (as recorded) has neither
    ``completed_at`` nor ``output``.
    """
    out = core.prediction_json(row, origin)
    out.pop("data_removed", None)
    out.pop("deployment", None)
    out["urls"] = {k: v for k, v in out["urls"].items() if k in ("get", "cancel")}
    if created:
        if out.get("output") is None:
            out.pop("output", None)
    else:
        out.setdefault("completed_at", None)
    return out


class Trainings:
    """Handlers of the training endpoints for one core."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.cat = catalogue_of(core)
        self.trained = Trained(core, self.cat)

    def _training_or_404(self, account: str, pid: str) -> dict[str, Any]:
        row = self.core.get_prediction(account, pid)
        if row is None or row["kind"] != "training":
            raise not_found()
        return row

    async def create(self, request: Request) -> Response:
        """``POST /v1/models/{owner}/{name}/versions/{version_id}/trainings`` (201)."""

        api = api_of(request)
        account = api.account(request)
        body = require_object(await api.json_body(request))
        lines = [f"- {k} is required" for k in ("destination", "input") if k not in body]
        # Unknown keys are ignored (the spec's training request allows additional properties).
        if "input" in body and not isinstance(body["input"], dict):
            lines.append(
                f"- input: Invalid type. Expected: object, given: {json_type(body['input'])}"
            )
        if "destination" in body and not isinstance(body["destination"], str):
            lines.append(
                f"- destination: Invalid type. Expected: string, given: {json_type(body['destination'])}"
            )
        webhook, events, more = webhook_fields(body, self.core.own)
        lines += more
        if lines:
            raise input_validation(lines)
        core = self.core
        owner, name = request.path_params["owner"], request.path_params["name"]
        model = core.registry.get_model(owner, name)
        if model is None or not (model["visibility"] == "public" or model["owner"] == account):
            raise not_found()
        base = core.registry.get_version(request.path_params["version_id"])
        if base is None or base["owner"] != owner or base["name"] != name:
            raise not_found()
        destination = body["destination"]
        dparts = destination.split("/")
        dest = (
            core.registry.get_model(dparts[0], dparts[1])
            if len(dparts) == 2 and all(dparts)
            else None
        )
        if dest is None or dest["owner"] != account:
            raise ApiError(404, DESTINATION_MISSING)
        if core.registry.impl(base["id"]) is None:
            raise ApiError(
                422,
                "This version's source is no longer available",
                title="Invalid version or not permitted",
            )
        trainer = self.trained.trainer_for(base)
        if trainer.doc is not None:
            issues = validate_input(trainer.doc, body["input"], core.own)
            if issues:
                raise input_validation(
                    [f"- {i['field']}: {i['description']}" for i in issues], issues
                )
        pid = new_id()
        now = core.clock.now()
        core.store.insert_prediction(
            {
                "id": pid,
                "kind": "training",
                "account": account,
                "model": f"{owner}/{name}",
                "version": base["id"],
                "status": "starting",
                "input": body["input"],
                "created_at": now,
                "webhook": webhook,
                "webhook_events_filter": events,
                "stream": 0,
                "origin": api.origin(request),
                "extra": {"destination": f"{dparts[0]}/{dparts[1]}", "trainer": trainer.key},
            }
        )
        row = core.store.get_prediction(pid)
        assert row is not None
        # The reply shows the training as accepted (``starting``), as the real API does, even
        # if the runner picks it up at once.
        created = training_json(core, row, api.origin(request), created=True)
        core._on_change(pid, "start")
        impl = _impl_for(
            owner,
            name,
            _trainer_callable(self.trained, trainer, base, f"{dparts[0]}/{dparts[1]}", pid),
            1,
        )
        try:
            _submit(core, pid, impl, f"train:{base['id']}", body["input"])
        except Exception as exc:
            from ..errors import throttled

            core.store.execute("DELETE FROM predictions WHERE id = ?", (pid,))
            raise throttled(1) from exc
        return json_response(created, 201)

    async def get(self, request: Request) -> Response:
        """``GET /v1/trainings/{id}``."""

        api = api_of(request)
        account = api.account(request)
        row = self._training_or_404(account, request.path_params["id"])
        return json_response(training_json(self.core, row, api.origin(request)))

    async def cancel(self, request: Request) -> Response:
        """``POST /v1/trainings/{id}/cancel``: as ``predictions.cancel``."""
        from ..runner import TERMINAL

        api = api_of(request)
        account = api.account(request)
        pid = request.path_params["id"]
        row = self._training_or_404(account, pid)
        if row["status"] not in TERMINAL:
            self.core.cancel_prediction(pid)
            row = await api._wait_for(pid, 1.0)
        return json_response(training_json(self.core, row, api.origin(request)))

    async def list(self, request: Request) -> Response:
        """``GET /v1/trainings``: newest first, 100 per page."""

        api = api_of(request)
        account = api.account(request)
        origin = api.origin(request)
        rows = self.core.store.query(
            "SELECT * FROM predictions WHERE account = ? AND kind = 'training' "
            "ORDER BY created_at DESC, id DESC",
            (account,),
        )
        page, nxt, prev = keyset_page(request, origin, rows, self.cat.page_size("trainings"))
        results = [
            training_json(self.core, self.core.store.decode_prediction(r) or r, origin)
            for r in page
        ]
        return json_response({"next": nxt, "previous": prev, "results": results})


def setup(core: Core) -> Trainings:
    """Register the built-in trainers and restore trained versions."""
    cat = catalogue_of(core)
    for target, (train, load) in BUILTIN_TRAINERS.items():
        if target not in cat.trainers:
            register_trainer(core, target, train, load=load)
    handlers = Trainings(core)
    if not cat.restored:
        cat.restored = True
        handlers.trained.restore()
    return handlers


def routes(core: Core, wrap: Wrap) -> list[Route]:
    """The training routes."""
    t = setup(core)
    return [
        Route("/v1/trainings", wrap(t.list), methods=["GET"]),
        Route("/v1/trainings/{id}", wrap(t.get), methods=["GET"]),
        Route("/v1/trainings/{id}/cancel", wrap(t.cancel), methods=["POST"]),
        Route(
            "/v1/models/{owner}/{name}/versions/{version_id}/trainings",
            wrap(t.create),
            methods=["POST"],
        ),
    ]
