"""Serve users' Cog models through the real Cog runtime (design §3.1-§3.3).

A Cog model directory (``cog.yaml`` + ``predict.py``) is registered with
:func:`register_cog_dir`, which validates it, generates its OpenAPI schema without
``cog build`` (Cog's own inspector, run in the model's interpreter) and derives a stable
content-hash version id (:func:`version_id_for`). Each version is run by one
:class:`CogWorker`: a ``python -m cog.server.http`` process (Cog 0.23's ``coglet`` runtime)
on a free loopback port, started lazily and stopped when idle.

The worker talks to the runtime the way the real platform does: ``PUT /predictions/{id}``
with ``Prefer: respond-async`` and a webhook pointing at a small callback server owned by
the worker. Webhook snapshots are turned into ordered :class:`CogEvent` objects (``start``,
``logs``, ``output`` chunks, ``completed``); files the runtime uploads become
:class:`CogFile` values that the local server stores and serves at its own URLs.

Nothing here depends on the rest of the local server, so it can be tested on its own.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import fnmatch
import hashlib
import http.server
import json
import logging
import mimetypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import httpx

log = logging.getLogger("replicate.local")

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
    "generate_schema",
    "parse_cog_option",
    "cog_callable",
    "declared_packages",
    "read_cog_yaml",
    "register_cog_dir",
    "register_cog_model",
    "trained_model",
    "version_id_for",
]

PROBE_SCRIPT = Path(__file__).with_name("cog") / "schema_probe.py"
SETUP_TEE_TEMPLATE = Path(__file__).with_name("cog") / "setup_tee.py"
SUPERVISE_SCRIPT = Path(__file__).with_name("cog") / "supervise.py"
ENTRY_MODULE = "_replicate_cog_entry.py"
_PROBE_MARKER = "@@COG_SCHEMA@@"

#: Directory entries never hashed nor treated as model code.
EXCLUDED_NAMES = frozenset(
    {
        ".git",
        "__pycache__",
        ".cog",
        ".venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".DS_Store",
    }
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})
WORKER_CRASHED = "worker crashed"


# --------------------------------------------------------------------------- errors


class CogError(Exception):
    """Base class for errors raised while serving a Cog model."""


class CogDirError(CogError, ValueError):
    """A ``--cog`` directory cannot be registered (missing files, bad ``cog.yaml``...)."""


class CogSetupError(CogError):
    """The model's ``setup()`` failed, or the runtime did not become ready.

    ``logs`` holds what the model and the runtime printed during setup.
    """

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.logs = logs


# --------------------------------------------------------------------------- cog.yaml


def read_cog_yaml(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse ``DIR/cog.yaml`` into a dict; raise :class:`CogDirError` if it is unusable."""
    path = Path(directory) / "cog.yaml"
    if not path.is_file():
        raise CogDirError(f"{Path(directory)} has no cog.yaml (expected {path})")
    text = path.read_text(encoding="utf-8")
    try:
        import yaml
    except ImportError:  # pragma: no cover - cog depends on pyyaml
        data: Any = _tiny_yaml(text)
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CogDirError(f"{path} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CogDirError(f"{path} must hold a mapping, got {type(data).__name__}")
    return data


def _tiny_yaml(text: str) -> dict[str, Any]:
    """Read the few ``cog.yaml`` keys we need when PyYAML is unavailable."""
    out: dict[str, Any] = {}
    section: str | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indented = line[0] in " \t"
        key, _, value = line.strip().partition(":")
        value = value.strip().strip("'\"")
        if not indented:
            section = key if not value else None
            if value:
                out[key] = value
            else:
                out[key] = {}
        elif section is not None and isinstance(out.get(section), dict):
            out[section][key] = int(value) if value.isdigit() else value
    return out


def _validate_ref(directory: Path, ref: Any, key: str) -> str:
    if not isinstance(ref, str) or ":" not in ref:
        raise CogDirError(
            f'{directory / "cog.yaml"}: {key!r} must look like "predict.py:Predictor", got {ref!r}'
        )
    file_part, _, name = ref.partition(":")
    if not file_part.endswith(".py") or not name.isidentifier():
        raise CogDirError(
            f'{directory / "cog.yaml"}: {key!r} must look like "predict.py:Predictor", got {ref!r}'
        )
    target = (directory / file_part).resolve()
    if not target.is_relative_to(directory.resolve()):
        raise CogDirError(
            f"{directory / 'cog.yaml'}: {key!r} points outside the directory: {ref!r}"
        )
    if not target.is_file():
        raise CogDirError(
            f"{directory / 'cog.yaml'}: {key!r} names {file_part}, which does not exist"
        )
    return ref


# --------------------------------------------------------------------------- hashing

_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_HASH_CACHE_LOCK = threading.Lock()


def _file_sha256(path: Path) -> str:
    """SHA-256 of a file, cached by (path, size, mtime) so big weights are hashed once."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _HASH_CACHE_LOCK:
        cached = _HASH_CACHE.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _HASH_CACHE_LOCK:
        _HASH_CACHE[key] = digest
    return digest


def _dockerignore_patterns(directory: Path) -> list[str]:
    path = directory / ".dockerignore"
    if not path.is_file():
        return []
    patterns = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and not line.startswith("!"):
            patterns.append(line.strip("/"))
    return patterns


def _ignored(rel: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern + "/*"):
            return True
        if "/" not in pattern and fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pattern):
            return True
    return False


def iter_model_files(directory: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """The files that make up a model directory, as sorted ``(relative path, path)`` pairs.

    Skips ``.git``, ``__pycache__``, ``.cog``, ``.venv``, tool caches, ``*.pyc`` and
    ``.dockerignore`` patterns.
    """
    root = Path(directory)
    patterns = _dockerignore_patterns(root)
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        rel_dir = base.relative_to(root).as_posix()
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in EXCLUDED_NAMES
            and not _ignored(f"{rel_dir}/{d}" if rel_dir != "." else d, patterns)
        )
        for name in filenames:
            if name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            rel = f"{rel_dir}/{name}" if rel_dir != "." else name
            if _ignored(rel, patterns):
                continue
            path = base / name
            if path.is_file():
                found.append((rel, path))
    found.sort()
    return found


def version_id_for(
    directory: str | os.PathLike[str],
    *,
    schema: Mapping[str, Any] | None = None,
    cog_version: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A stable 64-hex version id: SHA-256 over what would run (design §3.2).

    Covers the sorted ``(relative path, file SHA-256)`` pairs of the directory (see
    :func:`iter_model_files`; ``cog.yaml`` included), plus, when given, the schema's
    canonical JSON, the Cog version and any ``extra`` values (e.g. a weights hash). An
    unchanged directory keeps its id across restarts; any code change gives a new id.
    """
    root = Path(directory)
    h = hashlib.sha256(b"replicate-local-cog-version\x00v1\x00")
    for rel, path in iter_model_files(root):
        h.update(f"file\x00{rel}\x00{_file_sha256(path)}\x00".encode())
    if schema is not None:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        h.update(b"schema\x00" + canonical.encode() + b"\x00")
    if cog_version is not None:
        h.update(f"cog\x00{cog_version}\x00".encode())
    if extra:
        canonical = json.dumps(dict(extra), sort_keys=True, separators=(",", ":"), default=str)
        h.update(b"extra\x00" + canonical.encode() + b"\x00")
    return h.hexdigest()


# --------------------------------------------------------------------------- schema


def find_python(directory: str | os.PathLike[str], python: str | None = None) -> str:
    """The interpreter for a model: ``python`` if given, else ``DIR/.venv``, else ours."""
    if python:
        resolved = shutil.which(python) if os.sep not in python else python
        if not resolved or not os.path.exists(resolved):
            raise CogDirError(f"python interpreter {python!r} not found")
        return os.path.abspath(resolved)
    for candidate in (
        Path(directory) / ".venv" / "bin" / "python",
        Path(directory) / ".venv" / "Scripts" / "python.exe",
    ):
        if candidate.exists():
            return str(candidate.absolute())
    return sys.executable


def _worker_env(python: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the model's processes: its interpreter's bin dir first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in {"REPLICATE_API_TOKEN"}}
    bin_dir = str(Path(python).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)
    if extra:
        env.update(extra)
    return env


def _run_probe(args: list[str], cwd: Path, python: str, timeout: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(
            [python, str(PROBE_SCRIPT), *args],
            cwd=cwd,
            env=_worker_env(python),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CogDirError(f"{cwd}: generating the schema took longer than {timeout:g}s") from None
    _, marker, payload = proc.stdout.rpartition(_PROBE_MARKER)
    if not marker:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        hint = ""
        if "No module named 'cog'" in (proc.stderr or ""):
            hint = f" (the interpreter {python} has no `cog` package: pip install 'replicate[cog]')"
        raise CogDirError(f"{cwd}: could not inspect the model{hint}: " + " | ".join(tail))
    result: dict[str, Any] = json.loads(payload.strip().splitlines()[0])
    return result


def generate_schema(
    directory: str | os.PathLike[str],
    ref: str,
    *,
    python: str | None = None,
    train: bool = False,
    timeout: float = 120.0,
) -> tuple[dict[str, Any], str]:
    """The Cog OpenAPI document for ``ref`` in ``directory`` and the model's Cog version.

    Uses ``DIR/.cog/openapi_schema.json`` (from ``cog build``) as-is when present;
    otherwise runs Cog's inspector in the model's interpreter. Raises
    :class:`CogDirError` with the model's error (e.g. an import error) on failure.
    """
    info = _inspect_model(directory, ref, python=python, train=train, timeout=timeout)
    return info["schema"], str(info.get("cog_version"))


def _inspect_model(
    directory: str | os.PathLike[str],
    ref: str,
    *,
    python: str | None = None,
    train: bool = False,
    timeout: float = 120.0,
    packages: Iterable[str] = (),
) -> dict[str, Any]:
    root = Path(directory).resolve()
    interpreter = find_python(root, python)
    extra = ["--packages", ",".join(packages)] if packages else []
    prebuilt = root / ".cog" / "openapi_schema.json"
    if prebuilt.is_file() and not train:
        info = _run_probe(["--version", *extra], root, interpreter, timeout)
        info["schema"] = json.loads(prebuilt.read_text(encoding="utf-8"))
        return info
    info = _run_probe([ref, *(["--train"] if train else []), *extra], root, interpreter, timeout)
    if not info.get("ok"):
        raise CogDirError(f"{root}: invalid predictor {ref!r}: {info.get('error')}")
    return info


_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def declared_packages(directory: str | os.PathLike[str], config: Mapping[str, Any]) -> list[str]:
    """Distribution names from ``build.python_packages`` and ``build.python_requirements``."""
    build = config.get("build") if isinstance(config.get("build"), dict) else {}
    lines: list[str] = []
    packages = build.get("python_packages") if isinstance(build, dict) else None
    if isinstance(packages, list):
        lines += [str(p) for p in packages]
    requirements = build.get("python_requirements") if isinstance(build, dict) else None
    if isinstance(requirements, str):
        path = Path(directory) / requirements
        with contextlib.suppress(OSError):
            lines += path.read_text(encoding="utf-8").splitlines()
    names: list[str] = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith(("-", "git+", "http:", "https:", "file:")):
            continue
        match = _REQUIREMENT_NAME.match(line)
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return names


# --------------------------------------------------------------------------- registration


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
    _split_owner_name(owner_name)
    return owner_name, Path(directory).expanduser()


def _split_owner_name(owner_name: str) -> tuple[str, str]:
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
    owner, name = _split_owner_name(owner_name)
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise CogDirError(f"Cog model directory {str(directory)!r} does not exist")
    root = root.resolve()
    config = read_cog_yaml(root)
    if "predict" not in config:
        raise CogDirError(
            f"{root / 'cog.yaml'} has no 'predict' entry (e.g. predict: \"predict.py:Predictor\")"
        )
    predict_ref = _validate_ref(root, config["predict"], "predict")
    train_ref = _validate_ref(root, config["train"], "train") if config.get("train") else None
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
    info = _inspect_model(
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
        train_doc = _inspect_model(
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

    Its id hashes the base version id and the weights' SHA-256 (design §3.2); it belongs to
    ``destination`` (``owner/name``, default the base model). Serve it with a
    :class:`CogWorker` in predict mode: the runtime passes the weights path to
    ``setup(weights)``.
    """
    path = Path(weights).resolve()
    if not path.is_file():
        raise CogDirError(f"weights file {str(weights)!r} does not exist")
    owner, name = _split_owner_name(destination or base.owner_name)
    version_id = hashlib.sha256(
        f"replicate-local-trained\x00{base.version_id}\x00{_file_sha256(path)}".encode()
    ).hexdigest()
    return dataclasses.replace(
        base, owner=owner, name=name, version_id=version_id, weights=str(path)
    )


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class CogFile:
    """A file produced by a Cog model, stored locally until the server takes it over."""

    path: Path
    filename: str
    content_type: str

    def read_bytes(self) -> bytes:
        """The file's content."""
        return self.path.read_bytes()


@dataclass
class CogResult:
    """How a prediction ended. ``output`` may contain :class:`CogFile` values."""

    status: Literal["succeeded", "failed", "canceled"]
    output: Any = None
    error: str | None = None
    logs: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CogEvent:
    """One thing that happened to a prediction, in order.

    ``type`` is ``"start"`` (the model began running; ``data`` is ``None``), ``"logs"``
    (``data`` is new log text), ``"output"`` (``data`` is one chunk of an iterator output,
    possibly a :class:`CogFile`) or ``"completed"`` (``data`` is the :class:`CogResult`).
    """

    type: Literal["start", "logs", "output", "completed"]
    data: Any = None


EventCallback = Callable[[CogEvent], None]


# --------------------------------------------------------------------------- callback server


class _CallbackServer:
    """Loopback HTTP server receiving the runtime's webhooks and file uploads."""

    def __init__(self, worker: CogWorker, files_dir: Path) -> None:
        self.worker = worker
        self.files_dir = files_dir
        self.secret = secrets.token_urlsafe(16)
        self.files: dict[str, CogFile] = {}
        self.inputs: dict[str, Path] = {}
        self.upload_lock = threading.Lock()
        self._counter = 0
        self._lock = threading.Lock()
        handler = self._make_handler()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}/{self.secret}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"cog-callbacks-{worker.model.owner_name}",
            daemon=True,
        )
        self.thread.start()

    @property
    def webhook_url(self) -> str:
        return f"{self.base}/webhook"

    @property
    def upload_url(self) -> str:
        return f"{self.base}/upload/"

    @property
    def files_prefix(self) -> str:
        return f"{self.base}/files/"

    def input_url(self, path: Path) -> str:
        """A URL on this server that serves a local input file to the runtime."""
        token = secrets.token_urlsafe(12)
        route = f"inputs/{token}/{urllib.parse.quote(_safe_filename(path.name))}"
        with self._lock:
            self.inputs[route] = path
        return f"{self.base}/{route}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def store(
        self, data_iter: Iterable[bytes], filename: str, content_type: str, prediction_id: str
    ) -> tuple[str, CogFile]:
        """Save one file; return its internal URL and the :class:`CogFile`."""
        filename = _safe_filename(filename)
        with self._lock:
            self._counter += 1
            token = f"{self._counter:06d}"
        folder = self.files_dir / (_safe_filename(prediction_id) or "unknown") / token
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / filename
        with path.open("wb") as f:
            for chunk in data_iter:
                f.write(chunk)
        cog_file = CogFile(path=path, filename=filename, content_type=content_type)
        url = f"{self.files_prefix}{token}/{urllib.parse.quote(filename)}"
        with self._lock:
            self.files[url] = cog_file
        return url, cog_file

    def _make_handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body_chunks(self) -> Iterable[bytes]:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size_line = self.rfile.readline().split(b";", 1)[0].strip()
                        size = int(size_line or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return
                        remaining = size
                        while remaining:
                            chunk = self.rfile.read(min(remaining, 1 << 16))
                            if not chunk:
                                return
                            remaining -= len(chunk)
                            yield chunk
                        self.rfile.readline()
                else:
                    remaining = int(self.headers.get("Content-Length") or 0)
                    while remaining > 0:
                        chunk = self.rfile.read(min(remaining, 1 << 16))
                        if not chunk:
                            return
                        remaining -= len(chunk)
                        yield chunk

            def _reply(self, status: int, headers: Mapping[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _route(self) -> str | None:
                prefix = f"/{server.secret}/"
                return self.path[len(prefix) :] if self.path.startswith(prefix) else None

            def do_POST(self) -> None:
                route = self._route()
                body = b"".join(self._body_chunks())
                if route != "webhook":
                    self._reply(404)
                    return
                try:
                    snapshot = json.loads(body)
                except ValueError:
                    self._reply(400)
                    return
                self._reply(200)
                if isinstance(snapshot, dict):
                    server.worker._on_webhook(snapshot)

            def do_GET(self) -> None:
                route = self._route()
                found = server.inputs.get(route or "")
                if found is None or not found.is_file():
                    self._reply(404)
                    return
                size = found.stat().st_size
                content_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                with found.open("rb") as f:
                    shutil.copyfileobj(f, self.wfile, 1 << 16)

            def do_PUT(self) -> None:
                route = self._route()
                if route is None or not route.startswith("upload/"):
                    for _ in self._body_chunks():
                        pass
                    self._reply(404)
                    return
                filename = urllib.parse.unquote(route[len("upload/") :]) or "output"
                content_type = self.headers.get("Content-Type") or (
                    mimetypes.guess_type(filename)[0] or "application/octet-stream"
                )
                prediction_id = self.headers.get("X-Prediction-Id") or "unknown"
                # One upload at a time: the runtime orders file outputs by when their
                # uploads finish, so answering in arrival order keeps the model's order.
                with server.upload_lock:
                    url, _ = server.store(
                        self._body_chunks(), filename, content_type, prediction_id
                    )
                    self._reply(201, {"Location": url})

        return Handler


def _safe_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name[:200] or "output"


_DATA_URI_RE = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),(.*)$", re.DOTALL)


# --------------------------------------------------------------------------- runs


class _SetupFailed(Exception):
    def __init__(self, message: str, runtime_logs: str, *, exited: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.runtime_logs = runtime_logs
        self.exited = exited


class _PortTaken(Exception):
    """The runtime exited because its port was taken between choosing and binding it."""


class _Run:
    """Book-keeping for one in-flight prediction."""

    def __init__(self, prediction_id: str, on_event: EventCallback | None) -> None:
        self.id = prediction_id
        self.on_event = on_event
        self.items: deque[tuple[str, Any]] = deque()
        self.cond = threading.Condition()
        self.dispatched = False
        self.cancel_requested_at: float | None = None
        self.started = False
        self.logs = ""
        self.emitted_chunks = 0
        self.done = False

    def put(self, kind: str, payload: Any = None) -> None:
        with self.cond:
            self.items.append((kind, payload))
            self.cond.notify_all()

    def get(self, timeout: float) -> tuple[str, Any] | None:
        with self.cond:
            if not self.items:
                self.cond.wait(timeout)
            return self.items.popleft() if self.items else None


# --------------------------------------------------------------------------- worker

WorkerState = Literal["stopped", "starting", "ready", "setup_failed"]


class CogWorker:
    """One Cog runtime process serving one model version.

    ``predict()`` starts the process on first use (``start()`` can be called eagerly), runs
    one prediction and reports :class:`CogEvent` objects to ``on_event`` in the calling
    thread, in order. The process stops after ``idle_timeout`` seconds without predictions,
    on :meth:`stop`, or when setup fails (the failure is kept for ``setup_retry_after``
    seconds, during which predictions fail at once with the same error and logs).
    Thread-safe: predictions may run concurrently up to ``model.concurrency``.
    """

    def __init__(
        self,
        model: CogModel,
        *,
        idle_timeout: float | None = 600.0,
        setup_timeout: float = 300.0,
        cancel_grace: float = 10.0,
        setup_retry_after: float = 30.0,
        weights: str | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        on_stop: Callable[[CogWorker], None] | None = None,
        record_setup: bool = True,
        file_outputs: Literal["auto", "upload", "inline"] = "auto",
        restart_backoff: float = 1.0,
        mode: Literal["predict", "train"] = "predict",
    ) -> None:
        if mode not in ("predict", "train"):
            raise ValueError("mode must be 'predict' or 'train'")
        if mode == "train" and model.train_ref is None:
            raise ValueError(f"{model.owner_name} has no 'train' entry in cog.yaml")
        self.model = model
        self.mode = mode
        self.idle_timeout = idle_timeout
        self.setup_timeout = setup_timeout
        self.cancel_grace = cancel_grace
        self.setup_retry_after = setup_retry_after
        self.weights = weights
        self.extra_env = dict(env or {})
        self.on_stop = on_stop
        self.record_setup = record_setup
        if file_outputs not in ("auto", "upload", "inline"):
            raise ValueError("file_outputs must be 'auto', 'upload' or 'inline'")
        self.file_outputs = file_outputs
        self.restart_backoff = restart_backoff
        self.crashes = 0  #: crashes since the last successful prediction
        self._last_crash = 0.0
        self._own_work_dir = work_dir is None
        self._work_dir = Path(work_dir) if work_dir is not None else None
        self._lock = threading.RLock()
        self._start_lock = threading.Lock()
        self._state: WorkerState = "stopped"
        self._proc: subprocess.Popen[bytes] | None = None
        self._callbacks: _CallbackServer | None = None
        self._http: httpx.Client | None = None
        self._base_url = ""
        self._runs: dict[str, _Run] = {}
        self._active = 0
        self._last_used = time.monotonic()
        self._output: deque[str] = deque(maxlen=2000)
        self._setup_lines: list[str] = []
        self._setup_error: CogSetupError | None = None
        self._setup_failed_at = 0.0
        self._generation = 0
        self._stopping = False
        self._stop_requested = False
        self._stopped_event = threading.Event()
        self._stopped_event.set()
        self._idle_cond = threading.Condition(self._lock)
        self.starts = 0  #: how many times a runtime process was started

    # ------------------------------------------------------------------ properties

    @property
    def version_id(self) -> str:
        """The model version this worker serves."""
        return self.model.version_id

    @property
    def state(self) -> WorkerState:
        """``stopped``, ``starting``, ``ready`` or ``setup_failed``."""
        return self._state

    @property
    def pid(self) -> int | None:
        """The runtime process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def base_url(self) -> str:
        """The runtime's loopback URL while it runs (for ``/openapi.json``, diagnostics)."""
        return self._base_url

    @property
    def output_tail(self) -> str:
        """The last lines the runtime process printed (diagnostics)."""
        return "\n".join(self._output)

    @property
    def output_schema(self) -> dict[str, Any]:
        """``Output`` (or ``TrainingOutput`` in train mode)."""
        return self.model.component("TrainingOutput" if self.mode == "train" else "Output")

    @property
    def is_iterator(self) -> bool:
        """True when this worker's output streams (``x-cog-array-type: iterator``)."""
        return self.output_schema.get("x-cog-array-type") == "iterator"

    @property
    def _endpoint(self) -> str:
        return "/trainings" if self.mode == "train" else "/predictions"

    def schema(self) -> dict[str, Any]:
        """The version's Cog OpenAPI document (store it as the version's ``openapi_schema``)."""
        return self.model.schema

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until the runtime process is not running; True if it stopped in time."""
        return self._stopped_event.wait(timeout)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the runtime (if needed) and wait until setup finished.

        Raises :class:`CogSetupError` with the setup logs when setup fails or times out.
        """
        with self._start_lock:
            with self._lock:
                stopping = self._stopping and self._proc is not None
            if stopping:
                # An idle stop or an eviction is under way: let it finish, then start afresh.
                self._stopped_event.wait(30.0)
            with self._lock:
                alive = self._proc is not None and self._proc.poll() is None
                if self._state == "ready" and alive and not self._stopping:
                    return
                if self._setup_error is not None:
                    if time.monotonic() - self._setup_failed_at < self.setup_retry_after:
                        raise self._setup_error
                    self._setup_error = None
            if self.crashes and self.restart_backoff > 0:
                # Restart after a crash with exponential backoff (1s, 2s, 4s... up to 30s).
                delay = min(self.restart_backoff * 2 ** (self.crashes - 1), 30.0)
                remaining = self._last_crash + delay - time.monotonic()
                if remaining > 0:
                    time.sleep(remaining)
            if not self.model.source_available():
                raise CogSetupError(
                    f"This version's source is no longer available ({self.model.directory} "
                    "is gone or holds different code)"
                )
            for attempt in range(3):
                try:
                    self._spawn_and_wait()
                    return
                except _PortTaken:
                    if attempt == 2:
                        raise CogSetupError(
                            "The Cog runtime could not bind a loopback port", self.output_tail
                        ) from None

    def _spawn_and_wait(self) -> None:
        model = self.model
        with self._lock:
            self._state = "starting"
            self._stopping = False
            self._stop_requested = False
            self._stopped_event.clear()
            self._generation += 1
            generation = self._generation
            self._setup_lines = []
            self._output.clear()
        try:
            if self._work_dir is None:
                self._work_dir = Path(tempfile.mkdtemp(prefix="replicate-cog-"))
            stage = self._work_dir / f"stage-{model.version_id[:16]}-{self.mode}"
            entry = self._prepare_stage(stage)
            setup_log = self._work_dir / "setup.log"
            with contextlib.suppress(FileNotFoundError):
                setup_log.unlink()
            callbacks = _CallbackServer(self, self._work_dir / "outputs")
        except OSError as exc:
            with self._lock:
                self._state = "stopped"
                self._stopped_event.set()
            raise CogSetupError(f"Could not prepare the model's worker: {exc}") from exc
        port = _free_port()
        env = _worker_env(
            model.python,
            {
                "PORT": str(port),
                ("COG_TRAIN_TYPE_STUB" if self.mode == "train" else "COG_PREDICT_TYPE_STUB"): str(
                    stage / entry
                ),
                "REPLICATE_COG_SETUP_LOG": str(setup_log),
                "COG_MAX_CONCURRENCY": str(model.concurrency),
                "COG_THROTTLE_RESPONSE_INTERVAL": "0",
                "LOG_FORMAT": "json",
            },
        )
        weights = self.weights or model.weights
        if weights:
            env["COG_WEIGHTS"] = weights
        env.update(self.extra_env)
        cmd = [model.python, "-m", "cog.server.http", "--host", "127.0.0.1"]
        if self.mode == "train":
            cmd += ["--x-mode", "train"]
        if self._uploads_files():
            cmd += ["--upload-url", callbacks.upload_url]
        posix = os.name == "posix"
        if posix:
            # The supervisor ends the runtime when our end of its stdin pipe closes, so
            # runtimes never outlive the server, even one killed with SIGKILL.
            cmd = [model.python, str(SUPERVISE_SCRIPT), *cmd]
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=stage,
                env=env,
                stdin=subprocess.PIPE if posix else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=posix,
            )
        except OSError as exc:
            callbacks.close()
            with self._lock:
                self._state = "stopped"
                self._stopped_event.set()
            raise CogSetupError(f"Could not start the Cog runtime ({model.python}): {exc}") from exc
        with self._lock:
            self._proc = proc
            self._callbacks = callbacks
            self._base_url = f"http://127.0.0.1:{port}"
            self._http = httpx.Client(
                base_url=self._base_url, timeout=httpx.Timeout(30.0, connect=5.0)
            )
            self.starts += 1
        pump = threading.Thread(
            target=self._pump_output,
            args=(proc,),
            daemon=True,
            name=f"cog-output-{model.owner_name}",
        )
        pump.start()
        threading.Thread(
            target=self._watch_process,
            args=(proc, generation),
            daemon=True,
            name=f"cog-watch-{model.owner_name}",
        ).start()
        try:
            self._wait_ready(proc, self._http)
        except _SetupFailed as failed:
            # Stop the process first so every line it printed has been read.
            self._shutdown_process(graceful=True)
            pump.join(5.0)
            if failed.exited and "address already in use" in self.output_tail.lower():
                raise _PortTaken() from None
            if self._stop_requested:
                # stop() during setup: not a setup failure worth remembering.
                with self._lock:
                    self._state = "stopped"
                raise CogSetupError("The model worker was stopped during setup") from None
            error = CogSetupError(failed.message, self._setup_logs(failed.runtime_logs, setup_log))
            with self._lock:
                self._setup_error = error
                self._setup_failed_at = time.monotonic()
                self._state = "setup_failed"
            raise error from None
        with self._lock:
            self._state = "ready"
            self._last_used = time.monotonic()
        if self.idle_timeout is not None:
            threading.Thread(
                target=self._idle_reaper,
                args=(generation,),
                daemon=True,
                name=f"cog-idle-{model.owner_name}",
            ).start()

    def _uploads_files(self) -> bool:
        """Whether the runtime uploads file outputs to us (else it inlines ``data:`` URIs).

        Uploads keep the model's filenames, but Cog 0.23 orders a list of uploaded files by
        upload completion, so ``auto`` inlines outputs that are arrays of files (their
        order then matches the model's) and uploads everything else.
        """
        if self.file_outputs != "auto":
            return self.file_outputs == "upload"
        out = self.output_schema
        items = out.get("items") if out.get("type") == "array" else None
        return not (isinstance(items, dict) and items.get("format") == "uri")

    def _prepare_stage(self, stage: Path) -> str:
        """A directory mirroring the model's top level plus ``.cog/openapi_schema.json``.

        Returns the predictor reference for the runtime: the model's own, or (with
        ``record_setup``) an entry module that records ``setup()`` output (see
        ``cog/setup_tee.py``).
        """
        if stage.exists():
            shutil.rmtree(stage)
        (stage / ".cog").mkdir(parents=True)
        for entry in sorted(self.model.directory.iterdir()):
            if entry.name == ".cog":
                for inner in entry.iterdir():
                    if inner.name != "openapi_schema.json":
                        os.symlink(inner, stage / ".cog" / inner.name)
                continue
            os.symlink(entry, stage / entry.name)
        (stage / ".cog" / "openapi_schema.json").write_text(
            json.dumps(self.model.schema), encoding="utf-8"
        )
        ref = self.model.train_ref if self.mode == "train" else self.model.predict_ref
        assert ref is not None
        if not self.record_setup or (stage / ENTRY_MODULE).exists():
            return ref
        file_part, _, name = ref.partition(":")
        template = SETUP_TEE_TEMPLATE.read_text(encoding="utf-8")
        code = template.replace('"@@FILE@@"', json.dumps(file_part)).replace(
            '"@@NAME@@"', json.dumps(name)
        )
        (stage / ENTRY_MODULE).write_text(code, encoding="utf-8")
        return f"{ENTRY_MODULE}:{name}"

    def _wait_ready(self, proc: subprocess.Popen[bytes], client: httpx.Client | None) -> None:
        """Poll ``/health-check`` until READY; raise :class:`_SetupFailed` otherwise."""
        deadline = time.monotonic() + self.setup_timeout
        delay = 0.02
        while True:
            if proc.poll() is not None or client is None:
                code = proc.poll()
                raise _SetupFailed(
                    f"The Cog runtime exited during setup (exit status {code})", "", exited=True
                )
            try:
                resp = client.get("/health-check", timeout=2.0)
                health = resp.json() if resp.status_code == 200 else {}
            except (httpx.HTTPError, ValueError, RuntimeError):
                health = {}
            status = health.get("status") if isinstance(health, dict) else None
            if status in ("READY", "BUSY"):
                return
            if status in ("SETUP_FAILED", "DEFUNCT"):
                setup = health.get("setup") or {}
                raw = str(setup.get("logs") or "").strip()
                raise _SetupFailed(_setup_error_message(raw, status), raw)
            if time.monotonic() > deadline:
                raise _SetupFailed(f"Model setup did not finish within {self.setup_timeout:g}s", "")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def _setup_logs(self, runtime_logs: str, setup_log: Path | None = None) -> str:
        recorded = ""
        if setup_log is not None:
            with contextlib.suppress(OSError):
                recorded = setup_log.read_text(encoding="utf-8", errors="replace")
        lines = recorded.splitlines() if recorded.strip() else list(self._setup_lines)
        if runtime_logs and "Traceback (most recent call last)" not in recorded:
            lines.append(runtime_logs)
        elif not lines:
            lines = list(self._output)[-30:]
        return "\n".join(lines) + ("\n" if lines else "")

    def _pump_output(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._output.append(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if record.get("target") == "coglet::setup":
                message = (record.get("fields") or {}).get("message")
                if isinstance(message, str) and not message.startswith(
                    "<string>:1: DeprecationWarning"
                ):
                    self._setup_lines.append(message)

    def _watch_process(self, proc: subprocess.Popen[bytes], generation: int) -> None:
        proc.wait()
        with self._lock:
            if generation != self._generation:
                return
            expected = self._stopping
            runs = list(self._runs.values())
            if self._state != "setup_failed":
                self._state = "stopped"
            if not expected:
                self.crashes += 1
                self._last_crash = time.monotonic()
            self._cleanup_locked()
        for run in runs:
            run.put("stopped" if expected else "crashed", proc.returncode)
        if self.on_stop is not None:
            with contextlib.suppress(Exception):
                self.on_stop(self)
        self._stopped_event.set()

    def _cleanup_locked(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._callbacks is not None:
            callbacks = self._callbacks
            self._callbacks = None
            threading.Thread(target=callbacks.close, daemon=True).start()
        self._proc = None
        self._base_url = ""

    def _idle_reaper(self, generation: int) -> None:
        assert self.idle_timeout is not None
        with self._idle_cond:
            while True:
                if generation != self._generation or self._state != "ready":
                    return
                idle_for = time.monotonic() - self._last_used
                if self._active == 0 and idle_for >= self.idle_timeout:
                    break
                wait = self.idle_timeout - idle_for if self._active == 0 else self.idle_timeout
                self._idle_cond.wait(max(wait, 0.01))
        self.stop(reason="idle", only_if_idle=True)

    def stop(
        self, timeout: float = 10.0, *, reason: str = "stop", only_if_idle: bool = False
    ) -> bool:
        """Stop the runtime process (running predictions end ``canceled`` or ``failed``).

        With ``only_if_idle`` nothing happens while predictions are running (the idle timer
        and the pool's eviction use this). Returns True if a process was stopped.
        """
        with self._lock:
            if self._proc is None:
                return False
            if only_if_idle and self._active:
                return False
            self._stopping = True
            self._stop_requested = True
            runs = list(self._runs.values())
        for run in runs:
            run.put("stopped", reason)
        self._shutdown_process(graceful=True, timeout=timeout)
        return True

    def discard_outputs(self, prediction_id: str) -> None:
        """Delete the :class:`CogFile` files of a prediction once the server stored them.

        Otherwise they stay until :meth:`close`.
        """
        if self._work_dir is not None:
            folder = self._work_dir / "outputs" / (_safe_filename(prediction_id) or "unknown")
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Stop the runtime and delete the worker's temporary files."""
        self.stop()
        if self._own_work_dir and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def _shutdown_process(self, *, graceful: bool, timeout: float = 10.0) -> None:
        with self._lock:
            proc = self._proc
            client = self._http
            self._stopping = True
        if proc is None:
            return
        if graceful and client is not None and proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                client.post("/shutdown", timeout=2.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=min(timeout, 5.0))
        _kill_tree(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc, signal.SIGKILL)
            proc.wait()
        _kill_tree(proc, signal.SIGKILL)  # the runtime's own worker subprocess, if it lingers
        self._stopped_event.wait(timeout)

    # ------------------------------------------------------------------ predictions

    def predict(
        self,
        prediction_id: str,
        input: Mapping[str, Any],
        on_event: EventCallback | None = None,
    ) -> CogResult:
        """Run one prediction to the end and return how it ended.

        Events (``start``, ``logs``, ``output`` chunks for iterator outputs, then
        ``completed``) are delivered to ``on_event`` in this thread, in order. Setup
        failures, input the runtime rejects (422) and worker crashes become a ``failed``
        result rather than an exception. File outputs arrive as :class:`CogFile` values.
        Input values may be URLs or ``data:`` URIs (as on the API) or local files given as
        ``os.PathLike`` objects, which the worker serves to the runtime over loopback HTTP
        (a plain local path *string* is not turned into a file by the runtime).
        """
        run = _Run(prediction_id, on_event)
        with self._lock:
            if prediction_id in self._runs:
                raise ValueError(f"prediction {prediction_id!r} is already running on this worker")
            self._runs[prediction_id] = run
            self._active += 1
            self._last_used = time.monotonic()
        try:
            return self._predict(run, dict(input))
        finally:
            with self._lock:
                self._runs.pop(prediction_id, None)
                self._active -= 1
                self._last_used = time.monotonic()
                self._idle_cond.notify_all()

    def cancel(self, prediction_id: str) -> bool:
        """Ask the runtime to cancel a running prediction; False if it is not running here.

        The prediction's ``predict()`` call then returns ``canceled`` with partial output.
        If the runtime ignores the cancel for ``cancel_grace`` seconds the process is
        killed (and restarted on demand).
        """
        with self._lock:
            run = self._runs.get(prediction_id)
            client = self._http
        if run is None:
            return False
        with run.cond:
            if run.cancel_requested_at is None:
                run.cancel_requested_at = time.monotonic()
            dispatched = run.dispatched
            run.cond.notify_all()
        if dispatched and client is not None:
            self._send_cancel(client, prediction_id)
        return True

    def _send_cancel(self, client: httpx.Client, prediction_id: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            client.post(
                f"{self._endpoint}/{urllib.parse.quote(prediction_id, safe='')}/cancel",
                timeout=5.0,
            )

    def _emit(self, run: _Run, event: CogEvent) -> None:
        if run.on_event is not None:
            run.on_event(event)

    def _finish(self, run: _Run, result: CogResult) -> CogResult:
        if len(result.logs) > len(run.logs) and result.logs.startswith(run.logs):
            self._emit(run, CogEvent("logs", result.logs[len(run.logs) :]))
            run.logs = result.logs
        elif len(result.logs) < len(run.logs):
            result.logs = run.logs
        run.done = True
        if result.status == "succeeded":
            self.crashes = 0
        self._emit(run, CogEvent("completed", result))
        return result

    def _predict(self, run: _Run, input: dict[str, Any]) -> CogResult:
        try:
            self.start()
        except CogSetupError as exc:
            return self._finish(run, CogResult("failed", error=exc.message, logs=exc.logs))
        if run.cancel_requested_at is not None:
            return self._finish(run, CogResult("canceled"))

        failure = self._dispatch(run, input)
        if failure is not None:
            return self._finish(run, failure)

        while True:
            item = run.get(timeout=0.25)
            if item is None:
                result = self._check_stalled(run)
                if result is not None:
                    return self._finish(run, result)
                continue
            kind, payload = item
            if kind == "snapshot":
                result = self._apply_snapshot(run, payload)
                if result is not None:
                    return self._finish(run, result)
            elif kind == "crashed":
                if run.cancel_requested_at is not None:
                    return self._finish(run, CogResult("canceled", logs=run.logs))
                return self._finish(run, CogResult("failed", error=WORKER_CRASHED, logs=run.logs))
            elif kind == "stopped":
                return self._finish(
                    run,
                    CogResult(
                        "canceled" if run.cancel_requested_at is not None else "failed",
                        error=None
                        if run.cancel_requested_at is not None
                        else "The model worker was stopped while the prediction was running",
                        logs=run.logs,
                    ),
                )

    def _dispatch(self, run: _Run, input: dict[str, Any]) -> CogResult | None:
        with self._lock:
            client, callbacks = self._http, self._callbacks
        if client is None or callbacks is None:
            return CogResult("failed", error=WORKER_CRASHED)
        body = {
            "id": run.id,
            "input": self._input_for_runtime(input, callbacks),
            "webhook": callbacks.webhook_url,
            "webhook_events_filter": ["start", "output", "logs", "completed"],
        }
        path = f"{self._endpoint}/{urllib.parse.quote(run.id, safe='')}"
        deadline = time.monotonic() + 30.0
        delay = 0.01
        while True:
            try:
                resp = client.put(path, json=body, headers={"Prefer": "respond-async"})
            except httpx.HTTPError as exc:
                if self.pid is None:
                    return CogResult("failed", error=WORKER_CRASHED)
                return CogResult("failed", error=f"Could not reach the Cog runtime: {exc}")
            if resp.status_code == 409 and time.monotonic() < deadline:
                # At capacity: a slot is still being released after a prediction ended.
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            break
        if resp.status_code in (200, 201, 202):
            with run.cond:
                run.dispatched = True
                cancel_pending = run.cancel_requested_at is not None
            if cancel_pending:
                self._send_cancel(client, run.id)
            if resp.status_code in (200, 201):
                # A synchronous answer (should not happen with respond-async): use it.
                with contextlib.suppress(ValueError):
                    run.put("snapshot", resp.json())
            return None
        return CogResult("failed", error=_runtime_error_message(resp))

    def _input_for_runtime(self, value: Any, callbacks: _CallbackServer) -> Any:
        """Local files (``os.PathLike`` values) become URLs the runtime downloads."""
        if isinstance(value, os.PathLike):
            return callbacks.input_url(Path(value))
        if isinstance(value, dict):
            return {k: self._input_for_runtime(v, callbacks) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._input_for_runtime(v, callbacks) for v in value]
        return value

    def _check_stalled(self, run: _Run) -> CogResult | None:
        """Called when no webhook arrived for a while: detect ignored cancels."""
        if run.cancel_requested_at is None:
            return None
        if time.monotonic() - run.cancel_requested_at < self.cancel_grace:
            return None
        # The runtime ignored the cancel: kill it; it restarts on the next prediction.
        with self._lock:
            self._stopping = True
        self._shutdown_process(graceful=False, timeout=5.0)
        return CogResult("canceled", logs=run.logs)

    def _on_webhook(self, snapshot: dict[str, Any]) -> None:
        prediction_id = snapshot.get("id")
        with self._lock:
            run = self._runs.get(prediction_id) if isinstance(prediction_id, str) else None
        if run is not None:
            run.put("snapshot", snapshot)

    def _apply_snapshot(self, run: _Run, snap: dict[str, Any]) -> CogResult | None:
        """Turn one webhook snapshot into events; return the result if it is terminal.

        The runtime sends webhooks concurrently, so snapshots can arrive out of order;
        output and logs only ever grow, so anything not longer than what was already
        reported is ignored.
        """
        status = snap.get("status")
        terminal = status in TERMINAL_STATUSES
        if not run.started and (
            status == "processing"
            or (terminal and status != "canceled")
            or snap.get("output") is not None
        ):
            run.started = True
            self._emit(run, CogEvent("start"))
        logs = snap.get("logs")
        if isinstance(logs, str) and len(logs) > len(run.logs) and logs.startswith(run.logs):
            self._emit(run, CogEvent("logs", logs[len(run.logs) :]))
            run.logs = logs
        output = snap.get("output")
        if self.is_iterator and isinstance(output, list) and len(output) > run.emitted_chunks:
            for index in range(run.emitted_chunks, len(output)):
                chunk = self._convert_output(output[index], run.id, str(index))
                self._emit(run, CogEvent("output", chunk))
            run.emitted_chunks = len(output)
        if not terminal:
            return None
        metrics = snap.get("metrics") if isinstance(snap.get("metrics"), dict) else {}
        final = self._convert_output(output, run.id) if output is not None else None
        error: str | None = None
        logs = run.logs
        if status == "failed":
            raw = str(snap.get("error") or "")
            error, detailed = _model_error(raw)
            if detailed and detailed not in logs:
                # The runtime sends no traceback; keep at least the exception type in logs.
                logs += ("" if not logs or logs.endswith("\n") else "\n") + detailed + "\n"
        return CogResult(
            cast(Literal["succeeded", "failed", "canceled"], status),
            output=final,
            error=error,
            logs=logs,
            metrics=dict(metrics or {}),
        )

    def _convert_output(self, value: Any, prediction_id: str, path: str = "") -> Any:
        """Replace the worker's internal file URLs and ``data:`` URIs with :class:`CogFile`.

        ``path`` locates the value in the output (``"2"`` for the third chunk, ``"image"``
        for a field); inline files are named after it (``output-2.png``, ``image.png``),
        and the same file at the same place maps to the same :class:`CogFile`.
        """
        callbacks = self._callbacks
        if isinstance(value, list):
            return [
                self._convert_output(v, prediction_id, f"{path}-{i}" if path else str(i))
                for i, v in enumerate(value)
            ]
        if isinstance(value, dict):
            return {
                k: self._convert_output(v, prediction_id, f"{path}-{k}" if path else str(k))
                for k, v in value.items()
            }
        if isinstance(value, str) and callbacks is not None:
            if value.startswith(callbacks.files_prefix):
                found = callbacks.files.get(value)
                if found is not None:
                    return found
            if value.startswith("data:"):
                decoded = _decode_data_uri(value)
                if decoded is not None:
                    data, content_type = decoded
                    ext = mimetypes.guess_extension(content_type) or ".bin"
                    digest = hashlib.sha256(value.encode()).hexdigest()
                    key = f"data:{prediction_id}:{path}:{digest}"
                    cached = callbacks.files.get(key)
                    if cached is not None:
                        return cached
                    stem = (
                        "output"
                        if not path
                        else (path if not path[0].isdigit() else f"output-{path}")
                    )
                    _, cog_file = callbacks.store(
                        [data], f"{stem}{ext}", content_type, prediction_id
                    )
                    callbacks.files[key] = cog_file
                    return cog_file
        return value


# --------------------------------------------------------------------------- adapters


class CogPredictionError(CogError):
    """Raised by :func:`cog_callable` when a prediction fails (the message is ``error``)."""


def _to_plain_output(value: Any) -> Any:
    if isinstance(value, CogFile):
        return value.path
    if isinstance(value, list):
        return [_to_plain_output(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain_output(v) for k, v in value.items()}
    return value


def _opened_output(value: Any) -> Any:
    """Like :func:`_to_plain_output` but files become open file objects, already unlinked.

    The runner reads them (keeping the model's filename from ``.name``) after the callable
    returned, when the worker's copy may already be gone.
    """
    if isinstance(value, CogFile):
        handle = value.path.open("rb")
        if os.name == "posix":
            with contextlib.suppress(OSError):
                value.path.unlink()
        return handle
    if isinstance(value, list):
        return [_opened_output(v) for v in value]
    if isinstance(value, dict):
        return {k: _opened_output(v) for k, v in value.items()}
    return value


def _to_cog_input(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_to_cog_input(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_cog_input(v) for k, v in value.items()}
    return value


def cog_callable(worker: CogWorker, *, poll: float = 0.1) -> Callable[..., Any]:
    """Wrap a worker as a plain Python callable for a thread-based prediction runner.

    The callable takes ``cancel_event`` plus the inputs as keyword arguments (``None``
    values are dropped so the runtime applies its defaults; ``pathlib.Path`` values, as
    the runner makes of file inputs, are served to the runtime by the worker). Logs are written to ``sys.stdout`` in the
    calling thread as they arrive (so a runner that captures stdout per prediction records
    them live). For iterator outputs it is a generator yielding chunks; otherwise it
    returns the final output. :class:`CogFile` values become ``pathlib.Path`` objects in
    chunks and open (already unlinked) file objects in final outputs; the worker's copies
    are deleted once the prediction is over and the runner has had them.
    A failed prediction raises :class:`CogPredictionError`; a canceled one just ends
    (the runner sees its own ``cancel_event`` set).
    """

    def drive(cancel_event: threading.Event | None, inputs: dict[str, Any]) -> Any:
        import queue

        events: queue.Queue[CogEvent | BaseException] = queue.Queue()
        prediction_id = "local-" + secrets.token_hex(12)
        payload = {k: _to_cog_input(v) for k, v in inputs.items() if v is not None}

        done: set[str] = set()
        done_lock = threading.Lock()

        def mark_done(part: str) -> None:
            # The worker's copies of output files go once the runner has taken them
            # (consumer done) and the runtime can no longer add any (prediction done).
            with done_lock:
                done.add(part)
                both = done == {"consumer", "prediction"}
            if both:
                worker.discard_outputs(prediction_id)

        def target() -> None:
            try:
                worker.predict(prediction_id, payload, events.put)
            except BaseException as exc:  # surfaced in the caller's thread
                events.put(exc)
            finally:
                mark_done("prediction")

        threading.Thread(target=target, daemon=True, name=f"cog-{prediction_id}").start()
        cancel_sent = False
        finished = False
        try:
            while True:
                try:
                    item = events.get(timeout=poll)
                except queue.Empty:
                    if cancel_event is not None and cancel_event.is_set() and not cancel_sent:
                        cancel_sent = worker.cancel(prediction_id)
                    continue
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                if item.type == "logs":
                    sys.stdout.write(item.data)
                    sys.stdout.flush()
                elif item.type == "output":
                    yield ("chunk", _to_plain_output(item.data))
                elif item.type == "completed":
                    finished = True
                    result: CogResult = item.data
                    if result.status == "failed":
                        raise CogPredictionError(result.error or "Prediction failed")
                    yield ("result", result)
                    return
        finally:
            if not finished:
                # Closed early (the runner stopped iterating): cancel on the runtime too.
                worker.cancel(prediction_id)
            mark_done("consumer")

    if worker.is_iterator:

        def run_iterator(cancel_event: threading.Event, **inputs: Any) -> Iterable[Any]:
            steps = drive(cancel_event, inputs)
            try:
                for kind, value in steps:
                    if kind == "chunk":
                        yield value
            finally:
                steps.close()

        return run_iterator

    def run_once(cancel_event: threading.Event, **inputs: Any) -> Any:
        steps = drive(cancel_event, inputs)
        try:
            for kind, value in steps:
                if kind == "result":
                    return _opened_output(value.output)
            return None
        finally:
            steps.close()

    return run_once


def register_cog_model(
    registry: Any,
    model: CogModel,
    worker: CogWorker,
    **register_options: Any,
) -> str:
    """Register a Cog model with the local server's callable registry; returns the version id.

    Uses ``registry.register(owner/name, fn, concurrency=, version_id=, ...)`` with
    :func:`cog_callable`, then stores the Cog document as the version's
    ``openapi_schema`` (and its ``cog_version``), since a ``**inputs`` callable has no
    signature to derive it from. If the registry accepts ``openapi_schema=``, that is used
    instead of the direct update.
    """
    import inspect

    options: dict[str, Any] = {
        "concurrency": model.concurrency,
        "version_id": model.version_id,
        "source": "cog",
        "official": False,
    }
    options.update(register_options)
    params = inspect.signature(registry.register).parameters
    direct = "openapi_schema" in params
    if direct:
        options["openapi_schema"] = model.schema
        if "cog_version" in params:
            options["cog_version"] = model.cog_version
    version_id: str = registry.register(model.owner_name, cog_callable(worker), **options)
    if not direct:
        canonical = json.dumps(model.schema, sort_keys=True, separators=(",", ":"))
        registry.store.execute(
            "UPDATE versions SET openapi_schema = ?, cog_version = ? WHERE id = ?",
            (canonical, model.cog_version, version_id),
        )
    return version_id


# --------------------------------------------------------------------------- pool


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


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_tree(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the runtime's whole process group (it spawns its own Python worker)."""
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        elif proc.poll() is None:
            proc.kill()


def _setup_error_message(raw: str, status: str) -> str:
    """``worker setup failed: ... setup failed: RuntimeError: boom`` -> a clean message."""
    last = raw.strip().splitlines()[-1] if raw.strip() else ""
    match = re.search(r"(?i)setup failed: (?!.*setup failed: )(.*)$", last)
    detail = match.group(1).strip() if match else last
    if not detail:
        detail = f"runtime reported {status}"
    return f"Model setup failed: {detail}"


_EXC_PREFIX = re.compile(r"(?:^|\s)([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):(?:\s|$)")


def _model_error(raw: str) -> tuple[str, str]:
    """``Prediction failed: ... ValueError: boom`` -> (``boom``, ``ValueError: boom``).

    The runtime wraps the model's exception in its own prefixes (``Prediction failed:``,
    ``Generator iteration error:``). The first value is what the API reports as ``error``
    (``str(exception)``, as the real platform does); the second keeps the exception type
    for the logs.
    """
    text = raw.strip()
    match = _EXC_PREFIX.search(text)
    if match is None:
        detailed = re.sub(r"^(?:Prediction failed:\s*)+", "", text)
        return detailed or "Prediction failed", detailed
    detailed = text[match.start(1) :]
    message = text[match.end() :].strip()
    return message or match.group(1), detailed


def _runtime_error_message(resp: httpx.Response) -> str:
    """A clean error from a runtime rejection (422 validation errors name the field)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code == 422 and isinstance(body, dict) and isinstance(body.get("detail"), list):
        parts = []
        for item in body["detail"]:
            if not isinstance(item, dict):
                continue
            loc = [str(p) for p in item.get("loc") or [] if p not in ("body", "input")]
            msg = str(item.get("msg") or "invalid value")
            parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
        if parts:
            return "Invalid input: " + "; ".join(parts)
    if isinstance(body, dict) and body.get("error"):
        return f"Cog runtime error ({resp.status_code}): {body['error']}"
    return f"Cog runtime error ({resp.status_code}): {resp.text[:500]}"


def _decode_data_uri(value: str) -> tuple[bytes, str] | None:
    match = _DATA_URI_RE.match(value)
    if match is None:
        return None
    content_type = match.group(1) or "text/plain"
    params = match.group(2)
    payload = match.group(3)
    try:
        if ";base64" in params:
            return base64.b64decode(payload, validate=False), content_type
        return urllib.parse.unquote_to_bytes(payload), content_type
    except (binascii.Error, ValueError):
        return None
