"""Users' Cog models, served through the real Cog runtime.

A Cog model directory (``cog.yaml`` + ``predict.py``) is registered with
:func:`register_cog_dir`, which validates it, generates its OpenAPI schema without
``cog build`` and derives a content-hash version id. Each version is run by one
:class:`CogWorker` (a ``python -m cog.server.http`` process on a loopback port, started
lazily, stopped when idle); a :class:`CogWorkerPool` caps how many run at once. Nothing
here depends on the rest of the local server except through :func:`register_cog_model`.
See ``docs/local-server.md``, "Your own Cog models".

One module per concern:

- ``model_dir``: ``cog.yaml``, the files of a model directory, the version id;
- ``probe``: the model's interpreter and its schema (``schema_probe.py`` runs inside it);
- ``model``: :class:`CogModel`, :func:`register_cog_dir`, :func:`trained_model`;
- ``stage``: how a runtime is launched (staging directory, command line, environment);
- ``process``: one runtime process and its supervision (start, health, idle stop);
- ``callbacks``: the loopback server receiving the runtime's webhooks and uploads;
- ``worker``: :class:`CogWorker`, predictions on a runtime, webhook snapshots to events;
- ``adapter``: a worker as a callable for the server's runner;
- ``pool``: :class:`CogWorkerPool`;
- ``errors``, ``events``: the exceptions and the values a prediction reports.

``schema_probe.py``, ``setup_tee.py`` and ``supervise.py`` are standalone scripts run in
the model's own interpreter; they import nothing from ``replicate``.
"""

from __future__ import annotations

from .adapter import cog_callable, register_cog_model
from .errors import CogDirError, CogError, CogPredictionError, CogSetupError
from .events import CogEvent, CogFile, CogResult
from .model import CogModel, parse_cog_option, register_cog_dir, trained_model
from .model_dir import declared_packages, iter_model_files, read_cog_yaml, version_id_for
from .pool import CogWorkerPool
from .probe import generate_schema
from .worker import CogWorker

__all__ = [
    "CogDirError",
    "CogError",
    "CogEvent",
    "CogFile",
    "CogModel",
    "CogPredictionError",
    "CogResult",
    "CogSetupError",
    "CogWorker",
    "CogWorkerPool",
    "cog_callable",
    "declared_packages",
    "generate_schema",
    "iter_model_files",
    "parse_cog_option",
    "read_cog_yaml",
    "register_cog_dir",
    "register_cog_model",
    "trained_model",
    "version_id_for",
]
