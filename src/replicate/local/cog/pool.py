"""The pool of Cog workers: one per version id, with a cap on live runtime processes."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from .adapter import register_cog_model
from .errors import CogDirError
from .model import CogModel, parse_cog_option, register_cog_dir
from .worker import CogWorker

__all__ = ["CogWorkerPool"]


class CogWorkerPool:
    """Workers keyed by version id, with a cap on live runtime processes.

    ``get(model)`` returns the model's worker (created on first use, started lazily by its
    first prediction). When more than ``max_live`` workers run, the least recently used idle
    one is stopped.
    """

    def __init__(self, *, max_live: int = 4, **worker_options: Any) -> None:
        self.max_live = max_live
        self.worker_options = worker_options
        self._workers: dict[str, CogWorker] = {}
        self.models: dict[str, CogModel] = {}  #: attached models by version id
        self._lock = threading.Lock()

    def get(self, model: CogModel) -> CogWorker:
        """The worker serving ``model`` (one per version id)."""
        with self._lock:
            worker = self._workers.get(model.version_id)
            if worker is None:
                worker = CogWorker(model, **self.worker_options)
                self._workers[model.version_id] = worker
            self._evict_locked(keep=worker)
            return worker

    def _evict_locked(self, keep: CogWorker) -> None:
        live = [w for w in self._workers.values() if w.pid is not None and w is not keep]
        excess = len(live) + 1 - self.max_live
        if excess <= 0:
            return
        idle = sorted((w for w in live if w._active == 0), key=lambda w: w._last_used)
        for worker in idle[:excess]:
            threading.Thread(
                target=worker.stop, kwargs={"reason": "evicted", "only_if_idle": True}, daemon=True
            ).start()

    def attach(
        self,
        registry: Any,
        owner_name: str,
        directory: str | os.PathLike[str],
        *,
        python: str | None = None,
        **register_options: Any,
    ) -> CogModel:
        """Register a Cog directory with the local server's registry, served by this pool.

        Validates the directory (:func:`register_cog_dir`, raising :class:`CogDirError`),
        then registers its version through :func:`register_cog_model` with the pool's
        worker for it. The worker only starts with the first prediction.
        """
        model = register_cog_dir(owner_name, directory, python=python)
        register_cog_model(registry, model, self.get(model), **register_options)
        with self._lock:
            self.models[model.version_id] = model
        return model

    def attach_all(
        self, registry: Any, specs: Iterable[str] | Mapping[str, str | os.PathLike[str]]
    ) -> list[CogModel]:
        """:meth:`attach` every ``OWNER/NAME=DIR`` (``--cog`` values) or ``{owner/name: dir}``.

        Errors name the offending option: ``--cog acme/echo=DIR: <problem>``.
        """
        pairs: list[tuple[str, str | os.PathLike[str], str]]
        if isinstance(specs, Mapping):
            pairs = [(name, path, f"{name}={path}") for name, path in specs.items()]
        else:
            pairs = []
            for spec in specs:
                owner_name, directory = parse_cog_option(spec)
                pairs.append((owner_name, directory, spec))
        models = []
        for owner_name, target, label in pairs:
            try:
                models.append(self.attach(registry, owner_name, target))
            except CogDirError as exc:
                raise CogDirError(f"--cog {label}: {exc}") from None
        return models

    def stop_all(self) -> None:
        """Stop every worker and delete their temporary files."""
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        threads = [threading.Thread(target=w.close, daemon=True) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
