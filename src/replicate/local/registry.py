"""The model registry: callables registered as ``owner/name`` with content-hashed versions."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .schema import (
    build_input_schema,
    build_output_schema,
    canonical_json,
    cog_openapi_document,
    file_inputs,
)
from .store import Store

log = logging.getLogger("replicate.local")

#: The ``cog_version`` of versions not built by Cog (callables, demo models): the real API always
#: sends a string there and official clients reject ``null``. The Cog release whose document
#: shape the generated schemas follow.
CALLABLE_COG_VERSION = "0.23.1"
_VERSION_ID = re.compile(r"[0-9a-f]{64}")
_SCHEMA_CACHE_SIZE = 256
_ROW_CACHE_SIZE = 4096


@dataclass
class ModelImpl:
    """A runnable model version implementation (a plain Python callable)."""

    owner: str
    name: str
    fn: Callable[..., Any]
    concurrency: int = 1
    accepts_cancel_event: bool = False
    accepts_kwargs: bool = False
    params: set[str] = field(default_factory=set)
    inline: bool = False
    """Runs in the thread that starts it, without a model thread (see ``Registry.register``)."""

    @functools.cached_property
    def is_async(self) -> bool:
        """An ``async`` function or async generator."""
        return inspect.iscoroutinefunction(self.fn) or inspect.isasyncgenfunction(self.fn)

    @property
    def ref(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    @classmethod
    def for_callable(
        cls,
        owner: str,
        name: str,
        fn: Callable[..., Any],
        concurrency: int = 1,
        *,
        inline: bool = False,
    ) -> ModelImpl:
        """The implementation running ``fn``, with what its signature accepts."""
        sig = inspect.signature(fn)
        return cls(
            owner=owner,
            name=name,
            fn=fn,
            concurrency=concurrency,
            inline=inline,
            accepts_cancel_event="cancel_event" in sig.parameters,
            accepts_kwargs=any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()),
            params={
                n
                for n, p in sig.parameters.items()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            },
        )


def _validate_ref(ref: str) -> tuple[str, str]:
    parts = ref.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"model must be 'owner/name', got {ref!r}")
    return parts[0], parts[1]


class Registry:
    """Models and versions known to the server (metadata in SQLite, callables in memory)."""

    def __init__(self, store: Store, clock_now: Callable[[], float]) -> None:
        self.store = store
        self._now = clock_now
        self._impls: dict[str, ModelImpl] = {}
        self._lock = threading.Lock()
        self._schemas: dict[str, dict[str, Any]] = {}  # see _schema
        self._rows: dict[tuple[str, ...], tuple[tuple[int, int], Any]] = {}  # see _cached

    # ------------------------------------------------------------------ registration
    def register(
        self,
        model: str,
        fn: Callable[..., Any],
        *,
        concurrency: int = 1,
        description: str | None = None,
        readme: str | None = None,
        official: bool = True,
        visibility: str = "public",
        hardware: str = "cpu",
        tags: list[str] | None = None,
        version_key: str | None = None,
        version_id: str | None = None,
        extra_version_ids: list[str] | None = None,
        source: str = "callable",
        github_url: str | None = None,
        cover_image_url: str | None = None,
        openapi_schema: dict[str, Any] | None = None,
        cog_version: str | None = None,
        inline: bool = False,
    ) -> str:
        """Register a callable as ``owner/name``; returns the version id.

        The version id is the SHA-256 of the qualified name, the source text, the
        schema and ``version_key`` unless ``version_id`` pins it. ``extra_version_ids``
        adds older versions served by the same callable (listed before the latest).
        ``openapi_schema`` (with ``cog_version``) supplies a ready Cog document instead of
        deriving one from the signature, for ``**inputs`` callables such as Cog workers.
        ``inline``: the callable returns at once and never blocks (no I/O, no sleep, no
        file inputs to fetch): its predictions run in the thread that starts them (the
        request's, on the event loop) instead of being handed to a model thread, which
        saves two thread hand-offs per prediction (docs/local-server.md, "Models").
        """
        owner, name = _validate_ref(model)
        if version_id is not None and not _VERSION_ID.fullmatch(version_id):
            raise ValueError(f"version_id must be 64 lowercase hex characters: {version_id!r}")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if openapi_schema is not None:
            doc = openapi_schema
        else:
            input_schema, enums = build_input_schema(fn)
            output_schema = build_output_schema(fn)
            doc = cog_openapi_document(input_schema, output_schema, enums)
        if inline and file_inputs(doc):
            # Fetching a file input blocks: an inline run would stall the whole server.
            raise ValueError(f"{model}: an inline model cannot take file inputs")
        if version_id is None:
            try:
                src = inspect.getsource(fn)
            except (OSError, TypeError):
                src = ""
                log.warning(
                    "source of %s is not available; its version id ignores code changes", model
                )
            h = hashlib.sha256()
            h.update(
                canonical_json(
                    {
                        "model": f"{owner}/{name}",
                        "qualname": f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}",
                        "source": src,
                        "schema": doc,
                        "version_key": version_key,
                    }
                ).encode()
            )
            version_id = h.hexdigest()
        impl = ModelImpl.for_callable(owner, name, fn, concurrency, inline=inline)
        now = self._now()
        with self.store.transaction():
            existing = self.store.one(
                "SELECT created_at FROM models WHERE owner = ? AND name = ?", (owner, name)
            )
            if existing is None:
                self.store.execute(
                    "INSERT INTO models (owner, name, description, visibility, hardware, readme, tags, "
                    "is_official, source, created_at, github_url, cover_image_url) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        owner,
                        name,
                        description,
                        visibility,
                        hardware,
                        readme,
                        json.dumps(tags or []),
                        int(official),
                        source,
                        now,
                        github_url,
                        cover_image_url,
                    ),
                )
            else:
                self.store.execute(
                    "UPDATE models SET description = ?, visibility = ?, hardware = ?, readme = ?, tags = ?, "
                    "is_official = ?, source = ?, github_url = ?, cover_image_url = ? WHERE owner = ? AND name = ?",
                    (
                        description,
                        visibility,
                        hardware,
                        readme,
                        json.dumps(tags or []),
                        int(official),
                        source,
                        github_url,
                        cover_image_url,
                        owner,
                        name,
                    ),
                )
            ids = [*(extra_version_ids or []), version_id]
            for i, vid in enumerate(ids):
                row = self.store.one(
                    "SELECT created_at, owner, name FROM versions WHERE id = ?", (vid,)
                )
                if row is None:
                    self.store.execute(
                        "INSERT INTO versions (id, owner, name, created_at, cog_version, openapi_schema) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            vid,
                            owner,
                            name,
                            now - (len(ids) - 1 - i) * 0.001,
                            cog_version or CALLABLE_COG_VERSION,
                            canonical_json(doc),
                        ),
                    )
                elif vid == version_id and i == len(ids) - 1:
                    # Re-registration of an existing version: make it the latest again.
                    latest = self.store.one(
                        "SELECT MAX(created_at) AS m FROM versions WHERE owner = ? AND name = ?",
                        (owner, name),
                    )
                    if latest and latest["m"] is not None and latest["m"] > row["created_at"]:
                        self.store.execute(
                            "UPDATE versions SET created_at = ? WHERE id = ?", (now, vid)
                        )
        with self._lock:
            for vid in ids:
                self._impls[vid] = impl
        return version_id

    def attach_impl(self, version_id: str, impl: ModelImpl) -> None:
        """Make an existing (or about to be inserted) version runnable by ``impl``.

        For versions whose row is written elsewhere, such as trained versions (the
        catalogue) or versions restored after a restart: callables live only in memory.
        """
        with self._lock:
            self._impls[version_id] = impl

    # ------------------------------------------------------------------ lookup
    def impl(self, version_id: str) -> ModelImpl | None:
        """The callable behind a version, if it is loaded in this process."""
        # Every create asks; a dict read is atomic, so only writers take the lock.
        return self._impls.get(version_id)

    def _cached(self, key: tuple[str, ...], load: Callable[[], Any], stamp: Any = None) -> Any:
        """``load()``, or what it returned before while its tables have not changed.

        Creates read a model and its latest version (and the runner the version again) on
        every call: answering them from memory saves a query each. An entry holds the
        stamp of the tables read *before* its load, so a change made during the load (by this
        process or another one on the same file) makes it stale too; no lock is needed, as
        each dictionary operation is atomic and a stale entry is only ever overwritten.
        ``stamp``: the one just read for another lookup of the same moment.
        """
        if stamp is None:
            stamp = self.store.registry_changes.stamp()
        hit = self._rows.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = load()
        if len(self._rows) >= _ROW_CACHE_SIZE:
            self._rows.clear()
        self._rows[key] = (stamp, value)
        return value

    def get_model(self, owner: str, name: str, stamp: Any = None) -> dict[str, Any] | None:
        """A model row (the caller's own copy)."""
        row = self._cached(
            ("model", owner, name),
            lambda: self.store.one(
                "SELECT * FROM models WHERE owner = ? AND name = ?", (owner, name)
            ),
            stamp,
        )
        return dict(row) if row is not None else None

    def model_and_latest(
        self, owner: str, name: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """``(get_model(owner, name), latest_version(owner, name))``, read at one moment (a
        create by model name needs both)."""
        stamp = self.store.registry_changes.stamp()
        return self.get_model(owner, name, stamp), self.latest_version(owner, name, stamp)

    def _schema(self, text: str) -> dict[str, Any]:
        """The decoded ``openapi_schema`` column, decoded once per distinct text.

        Every create reads its version (several times); decoding a schema costs far more
        than the query. Keyed by the stored text, so a rewritten schema is a new entry. The
        decoded documents are shared: callers only read them.
        """
        cache = self._schemas
        doc = cache.get(text)
        if doc is None:
            if len(cache) >= _SCHEMA_CACHE_SIZE:
                cache.clear()
            doc = cache[text] = json.loads(text)
        return doc  # type: ignore[no-any-return]

    def _decoded(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is not None:
            row["openapi_schema"] = self._schema(row["openapi_schema"])
        return row

    def get_version(self, version_id: str) -> dict[str, Any] | None:
        """A version row with its decoded schema (the row is the caller's own copy; the
        schema document is shared and must not be changed)."""
        row = self._cached(
            ("version", version_id),
            lambda: self._decoded(
                self.store.one("SELECT * FROM versions WHERE id = ?", (version_id,))
            ),
        )
        return dict(row) if row is not None else None

    def latest_version(self, owner: str, name: str, stamp: Any = None) -> dict[str, Any] | None:
        """The newest version of a model (a copy, as :meth:`get_version` gives it)."""
        row = self._cached(
            ("latest", owner, name),
            lambda: self._decoded(
                self.store.one(
                    "SELECT * FROM versions WHERE owner = ? AND name = ? "
                    "ORDER BY created_at DESC, id DESC LIMIT 1",
                    (owner, name),
                )
            ),
            stamp,
        )
        return dict(row) if row is not None else None

    def list_versions(self, owner: str, name: str) -> list[dict[str, Any]]:
        """All versions of a model, newest first (copies, as :meth:`get_version` gives them)."""
        rows = self._cached(
            ("versions", owner, name),
            lambda: [
                self._decoded(r)
                for r in self.store.query(
                    "SELECT * FROM versions WHERE owner = ? AND name = ? "
                    "ORDER BY created_at DESC, id DESC",
                    (owner, name),
                )
            ],
        )
        return [dict(r) for r in rows]

    def resolve(self, ref: str) -> dict[str, Any] | None:
        """Resolve ``owner/name``, ``owner/name:version`` or a bare version id."""
        if ":" in ref:
            model, vid = ref.split(":", 1)
            row = self.get_version(vid)
            if row is None or f"{row['owner']}/{row['name']}" != model:
                return None
            return row
        if "/" in ref:
            parts = ref.split("/")
            if len(parts) != 2:
                return None
            return self.latest_version(parts[0], parts[1])
        return self.get_version(ref)
