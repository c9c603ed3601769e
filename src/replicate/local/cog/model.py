"""A registered Cog model: one immutable version of ``owner/name`` served from a directory."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CogDirError
from .model_dir import declared_packages, file_sha256, read_cog_yaml, validate_ref, version_id_for
from .probe import find_python, inspect_model

__all__ = ["CogModel", "parse_cog_option", "register_cog_dir", "split_owner_name", "trained_model"]

log = logging.getLogger("replicate.local")


@dataclass(frozen=True)
class CogModel:
    """A registered Cog model directory: one immutable version of ``owner/name``."""

    owner: str
    name: str
    directory: Path
    predict_ref: str
    schema: dict[str, Any] = field(repr=False, compare=False)
    cog_version: str
    version_id: str
    python: str
    concurrency: int = 1
    train_ref: str | None = None
    #: Packages ``cog.yaml`` asks for that the interpreter lacks (the server only warns).
    missing_packages: tuple[str, ...] = ()
    #: :func:`version_id_for` of the files alone, to notice when the code changed.
    files_digest: str = ""
    #: Weights of a trained version: passed to ``setup(weights)`` (``COG_WEIGHTS``).
    weights: str | None = None

    def source_available(self) -> bool:
        """True while the directory still holds this version's files.

        False once the directory is gone or its code changed (a newer version): the server
        then answers 422 ``This version's source is no longer available``.
        """
        if not self.directory.is_dir():
            return False
        return not self.files_digest or version_id_for(self.directory) == self.files_digest

    @property
    def owner_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    @property
    def input_schema(self) -> dict[str, Any]:
        """The ``Input`` component (what the server validates inputs against)."""
        return dict(self.schema.get("components", {}).get("schemas", {}).get("Input", {}))

    @property
    def output_schema(self) -> dict[str, Any]:
        """The ``Output`` component."""
        return dict(self.schema.get("components", {}).get("schemas", {}).get("Output", {}))

    @property
    def is_iterator(self) -> bool:
        """True when the output streams (``x-cog-array-type: iterator``)."""
        return self.output_schema.get("x-cog-array-type") == "iterator"

    def component(self, name: str) -> dict[str, Any]:
        """A component schema of the document (``Input``, ``TrainingOutput``...) or ``{}``."""
        return dict(self.schema.get("components", {}).get("schemas", {}).get(name, {}))


_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_.-]*[a-z0-9])?$", re.IGNORECASE)


def parse_cog_option(value: str) -> tuple[str, Path]:
    """Split a ``--cog OWNER/NAME=DIR`` value into ``("owner/name", Path(DIR))``."""
    owner_name, sep, directory = value.partition("=")
    if not sep or not directory:
        raise CogDirError(f"--cog expects OWNER/NAME=DIR, got {value!r}")
    split_owner_name(owner_name)
    return owner_name, Path(directory).expanduser()


def split_owner_name(owner_name: str) -> tuple[str, str]:
    """``"acme/echo"`` -> ``("acme", "echo")``; :class:`CogDirError` if it is not a model name."""
    owner, sep, name = owner_name.partition("/")
    if not sep or not _NAME_RE.match(owner) or not _NAME_RE.match(name):
        raise CogDirError(f"model name must look like OWNER/NAME, got {owner_name!r}")
    return owner, name


def register_cog_dir(
    owner_name: str,
    directory: str | os.PathLike[str],
    *,
    python: str | None = None,
    schema_timeout: float = 120.0,
) -> CogModel:
    """Validate a Cog model directory and describe its current version.

    Checks that ``DIR/cog.yaml`` exists and names an existing ``predict: "file.py:Class"``,
    generates the schema (without ``cog build``) and computes the content-hash version id.
    Raises :class:`CogDirError` with a message naming the problem otherwise.
    """
    owner, name = split_owner_name(owner_name)
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise CogDirError(f"Cog model directory {str(directory)!r} does not exist")
    root = root.resolve()
    config = read_cog_yaml(root)
    if "predict" not in config:
        raise CogDirError(
            f"{root / 'cog.yaml'} has no 'predict' entry (e.g. predict: \"predict.py:Predictor\")"
        )
    predict_ref = validate_ref(root, config["predict"], "predict")
    train_ref = validate_ref(root, config["train"], "train") if config.get("train") else None
    concurrency = 1
    conc = config.get("concurrency")
    if isinstance(conc, dict) and conc.get("max") is not None:
        try:
            concurrency = int(conc["max"])
        except (TypeError, ValueError):
            raise CogDirError(f"{root / 'cog.yaml'}: concurrency.max must be an integer") from None
        if concurrency < 1:
            raise CogDirError(f"{root / 'cog.yaml'}: concurrency.max must be >= 1")
    interpreter = find_python(root, python)
    info = inspect_model(
        root,
        predict_ref,
        python=interpreter,
        timeout=schema_timeout,
        packages=declared_packages(root, config),
    )
    schema, cog_version = info["schema"], str(info.get("cog_version"))
    if train_ref is not None and "TrainingInput" not in schema.get("components", {}).get(
        "schemas", {}
    ):
        # One document for both modes, as ``cog build`` makes for trainable models.
        train_doc = inspect_model(
            root, train_ref, python=interpreter, train=True, timeout=schema_timeout
        )["schema"]
        schema.setdefault("components", {}).setdefault("schemas", {}).update(
            train_doc.get("components", {}).get("schemas", {})
        )
        schema.setdefault("paths", {}).update(train_doc.get("paths", {}))
    missing = tuple(info.get("missing_packages") or ())
    if missing:
        log.warning(
            "%s: %s does not have these packages from cog.yaml: %s (build sections are not "
            "installed by the local server)",
            owner_name,
            interpreter,
            ", ".join(missing),
        )
    version_id = version_id_for(root, schema=schema, cog_version=cog_version)
    return CogModel(
        owner=owner,
        name=name,
        directory=root,
        predict_ref=predict_ref,
        schema=schema,
        cog_version=cog_version,
        version_id=version_id,
        python=interpreter,
        concurrency=concurrency,
        train_ref=train_ref,
        missing_packages=missing,
        files_digest=version_id_for(root),
    )


def trained_model(
    base: CogModel, weights: str | os.PathLike[str], *, destination: str | None = None
) -> CogModel:
    """The version a training of ``base`` produced: same code, new ``weights``.

    Its id hashes the base version id and the weights' SHA-256; it belongs to
    ``destination`` (``owner/name``, default the base model). Serve it with a
    :class:`CogWorker` in predict mode: the runtime passes the weights path to
    ``setup(weights)``.
    """
    path = Path(weights).resolve()
    if not path.is_file():
        raise CogDirError(f"weights file {str(weights)!r} does not exist")
    owner, name = split_owner_name(destination or base.owner_name)
    version_id = hashlib.sha256(
        f"replicate-local-trained\x00{base.version_id}\x00{file_sha256(path)}".encode()
    ).hexdigest()
    return dataclasses.replace(
        base, owner=owner, name=name, version_id=version_id, weights=str(path)
    )
