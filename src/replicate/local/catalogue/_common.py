"""Shared plumbing of the catalogue endpoints: per-core state, tables and request helpers."""

from __future__ import annotations

import inspect
import json
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import input_validation

if TYPE_CHECKING:
    from ..core import Core

DEFAULT_PAGE_SIZE = 100

_TABLES = """
CREATE TABLE IF NOT EXISTS deployments (
    owner TEXT NOT NULL, name TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (owner, name)
);
CREATE TABLE IF NOT EXISTS deployment_releases (
    owner TEXT NOT NULL, name TEXT NOT NULL, number INTEGER NOT NULL,
    model TEXT NOT NULL, version TEXT NOT NULL, hardware TEXT NOT NULL,
    min_instances INTEGER NOT NULL, max_instances INTEGER NOT NULL,
    created_at REAL NOT NULL, created_by TEXT NOT NULL,
    PRIMARY KEY (owner, name, number)
);
CREATE TABLE IF NOT EXISTS collections (
    slug TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,
    full_description TEXT, models TEXT NOT NULL DEFAULT '[]', created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trained_versions (
    version_id TEXT PRIMARY KEY, base_version TEXT NOT NULL, destination TEXT NOT NULL,
    training_id TEXT, trainer TEXT NOT NULL, weights BLOB NOT NULL, weights_name TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


class Catalogue:
    """Catalogue state of one ``Core``: tables, trainers, the weights directory."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.lock = threading.RLock()
        core.store.executescript(_TABLES)
        self.trainers: dict[str, Any] = {}
        # Beside the blobs: next to an on-disk database, else in the server's temp directory.
        base = getattr(core, "_tmp", None)
        if core.config.db != ":memory:":
            base = str(Path(core.config.db).parent)
        self._weights_root = Path(base) if base else None
        self._weights_dir: Path | None = None
        self.restored = False

    @property
    def page_sizes(self) -> dict[str, int]:
        """The server's page sizes (test controls may change them)."""
        return self.core.config.page_sizes

    def page_size(self, kind: str) -> int:
        """Page size of a list (100 unless configured)."""
        return int(self.page_sizes.get(kind, DEFAULT_PAGE_SIZE))

    def weights_dir(self) -> Path:
        """The directory of materialised trained weights (the bytes also live in the database)."""
        with self.lock:
            if self._weights_dir is None:
                if self._weights_root is not None:
                    d = self._weights_root / "weights"
                    d.mkdir(parents=True, exist_ok=True)
                else:
                    d = Path(tempfile.mkdtemp(prefix="replicate-local-weights-"))
                self._weights_dir = d
            return self._weights_dir


_STATES: weakref.WeakKeyDictionary[Any, Catalogue] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def catalogue_of(core: Core) -> Catalogue:
    """The catalogue state of ``core`` (created, with its tables, on first use)."""
    with _STATES_LOCK:
        state = _STATES.get(core)
        if state is None:
            state = Catalogue(core)
            _STATES[core] = state
        return state


def json_type(value: Any) -> str:
    """The JSON type name used in validation messages."""
    from ..schema import _json_type

    return _json_type(value)


def require_object(body: Any) -> dict[str, Any]:
    """422 unless the body is a JSON object."""
    if not isinstance(body, dict):
        raise input_validation(
            [f"- (root): Invalid type. Expected: object, given: {json_type(body)}"]
        )
    return body


def account_json(core: Core, username: str) -> dict[str, Any]:
    """``{type, username, name}`` of an account (as ``account.get`` shows it)."""
    cfg = core.config
    return {
        "type": "user",
        "username": username,
        "name": cfg.account_name if username == cfg.username else username,
    }


def dumps(value: Any) -> str:
    """Compact JSON."""
    return json.dumps(value, separators=(",", ":"))


def accepts_kwarg(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` takes a keyword argument ``name`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
