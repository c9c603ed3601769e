"""How a Cog runtime is launched: its staging directory, command line and environment.

The runtime reads the schema from ``.cog/openapi_schema.json`` and imports the predictor
from its working directory. Staging mirrors the model directory's top level with
symbolic links (nothing is copied) and adds the schema, plus, when ``setup()`` output is
recorded, an entry module made from ``setup_tee.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from .model import CogModel
from .probe import worker_env

__all__ = ["ENTRY_MODULE", "prepare_stage", "runtime_command", "runtime_env"]

SETUP_TEE_TEMPLATE = Path(__file__).with_name("setup_tee.py")
#: Run as ``python supervise.py COMMAND...``: ends the runtime when the server goes away.
SUPERVISE_SCRIPT = Path(__file__).with_name("supervise.py")
ENTRY_MODULE = "_replicate_cog_entry.py"


def prepare_stage(stage: Path, model: CogModel, ref: str, *, record_setup: bool) -> str:
    """Fill ``stage`` for running ``ref`` (``file.py:Name``) of ``model``.

    Returns the predictor reference for the runtime: ``ref`` itself, or (with
    ``record_setup``) the entry module that records what ``setup()`` prints (see
    ``setup_tee.py``).
    """
    if stage.exists():
        shutil.rmtree(stage)
    (stage / ".cog").mkdir(parents=True)
    for entry in sorted(model.directory.iterdir()):
        if entry.name == ".cog":
            for inner in entry.iterdir():
                if inner.name != "openapi_schema.json":
                    os.symlink(inner, stage / ".cog" / inner.name)
            continue
        os.symlink(entry, stage / entry.name)
    (stage / ".cog" / "openapi_schema.json").write_text(json.dumps(model.schema), encoding="utf-8")
    if not record_setup or (stage / ENTRY_MODULE).exists():
        return ref
    file_part, _, name = ref.partition(":")
    template = SETUP_TEE_TEMPLATE.read_text(encoding="utf-8")
    code = template.replace('"@@FILE@@"', json.dumps(file_part)).replace(
        '"@@NAME@@"', json.dumps(name)
    )
    (stage / ENTRY_MODULE).write_text(code, encoding="utf-8")
    return f"{ENTRY_MODULE}:{name}"


def runtime_env(
    model: CogModel,
    mode: Literal["predict", "train"],
    *,
    port: int,
    entry: Path,
    setup_log: Path,
    weights: str | None,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """The runtime's environment: its port, the entry module, JSON logs, no throttling."""
    env = worker_env(
        model.python,
        {
            "PORT": str(port),
            ("COG_TRAIN_TYPE_STUB" if mode == "train" else "COG_PREDICT_TYPE_STUB"): str(entry),
            "REPLICATE_COG_SETUP_LOG": str(setup_log),
            "COG_MAX_CONCURRENCY": str(model.concurrency),
            "COG_THROTTLE_RESPONSE_INTERVAL": "0",
            "LOG_FORMAT": "json",
        },
    )
    if weights:
        env["COG_WEIGHTS"] = weights
    env.update(extra)
    return env


def runtime_command(
    model: CogModel,
    mode: Literal["predict", "train"],
    *,
    upload_url: str | None,
    supervised: bool,
) -> list[str]:
    """The command line of the runtime (``python -m cog.server.http``).

    With ``upload_url`` the runtime uploads file outputs there (else it inlines them as
    ``data:`` URIs). ``supervised`` wraps it in ``supervise.py``, which ends the runtime
    when our end of its stdin pipe closes, so runtimes never outlive the server, even one
    killed with SIGKILL.
    """
    cmd = [model.python, "-m", "cog.server.http", "--host", "127.0.0.1"]
    if mode == "train":
        cmd += ["--x-mode", "train"]
    if upload_url is not None:
        cmd += ["--upload-url", upload_url]
    if supervised:
        cmd = [model.python, str(SUPERVISE_SCRIPT), *cmd]
    return cmd
