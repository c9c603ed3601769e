"""A Cog model directory: its ``cog.yaml``, the files that make it up, and its version id.

The version id is a content hash of what would run, so an unchanged directory keeps its
id across restarts and any change to the code gives a new version (see
``docs/local-server.md``, "Your own Cog models").
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import CogDirError

__all__ = [
    "EXCLUDED_NAMES",
    "declared_packages",
    "file_sha256",
    "iter_model_files",
    "read_cog_yaml",
    "validate_ref",
    "version_id_for",
]

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


def read_cog_yaml(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse ``DIR/cog.yaml`` into a dict; raise :class:`CogDirError` if it is unusable."""
    path = Path(directory) / "cog.yaml"
    if not path.is_file():
        raise CogDirError(f"{Path(directory)} has no cog.yaml (expected {path})")
    try:
        import yaml
    except ImportError:
        raise CogDirError(
            "reading cog.yaml needs PyYAML in the server's environment: "
            "pip install 'replicate[cog]'"
        ) from None
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CogDirError(f"{path} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CogDirError(f"{path} must hold a mapping, got {type(data).__name__}")
    return data


def validate_ref(directory: Path, ref: Any, key: str) -> str:
    """Check a ``predict:``/``train:`` value (``file.py:Name``, a file inside ``directory``)."""
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


_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_HASH_CACHE_LOCK = threading.Lock()
_HASH_CACHE_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
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
    """A stable 64-hex version id: SHA-256 over what would run.

    Covers the sorted ``(relative path, file SHA-256)`` pairs of the directory (see
    :func:`iter_model_files`; ``cog.yaml`` included), plus, when given, the schema's
    canonical JSON, the Cog version and any ``extra`` values (e.g. a weights hash). An
    unchanged directory keeps its id across restarts; any code change gives a new id.
    """
    root = Path(directory)
    h = hashlib.sha256(b"replicate-local-cog-version\x00v1\x00")
    for rel, path in iter_model_files(root):
        h.update(f"file\x00{rel}\x00{file_sha256(path)}\x00".encode())
    if schema is not None:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        h.update(b"schema\x00" + canonical.encode() + b"\x00")
    if cog_version is not None:
        h.update(f"cog\x00{cog_version}\x00".encode())
    if extra:
        canonical = json.dumps(dict(extra), sort_keys=True, separators=(",", ":"), default=str)
        h.update(b"extra\x00" + canonical.encode() + b"\x00")
    return h.hexdigest()


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
