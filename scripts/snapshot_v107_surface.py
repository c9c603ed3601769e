"""Regenerate tests/data/v107_surface.json: the public surface of replicate 1.0.7.

Usage (from the repository root)::

    python scripts/snapshot_v107_surface.py [--venv DIR] [--out tests/data/v107_surface.json]

replicate 1.0.7 is installed from the package registry into its own virtual environment
(``--venv``, default ``.bench/v107``, shared with the benchmarks) and introspected there as a black
box: ``pkgutil.walk_packages`` for the modules, ``dir()`` of each module and class,
``inspect.signature`` and the kind of each callable (function, generator function, async
generator function, coroutine function, class, ...). Its source files are never read.

What is recorded, per module, is every public name whose object comes from replicate itself
(classes and functions whose ``__module__`` is a replicate module, replicate submodules, type
aliases and constants defined there) — not the names a module merely imported from typing, httpx,
pydantic or the standard library. Per class: the public attributes defined by a replicate class
of its MRO, the fields of pydantic models, the keys of TypedDicts and the members of enums.
``tests/unit/test_v107_surface.py`` compares the package against this file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import venv as venv_module
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC = "replicate==1.0.7"


def _kind(obj: Any) -> str:
    import inspect
    import types

    if isinstance(obj, types.ModuleType):
        return "module"
    if isinstance(obj, staticmethod):
        return "staticmethod:" + _kind(obj.__func__)
    if isinstance(obj, classmethod):
        return "classmethod:" + _kind(obj.__func__)
    if isinstance(obj, property):
        return "property"
    if inspect.isclass(obj):
        return "class"
    if inspect.isasyncgenfunction(obj):
        return "async_generator_function"
    if inspect.isgeneratorfunction(obj):
        return "generator_function"
    if inspect.iscoroutinefunction(obj):
        return "coroutine_function"
    if inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isbuiltin(obj):
        return "function"
    if callable(obj):
        return "callable"
    return "data"


def _signature(obj: Any) -> list[dict[str, Any]] | None:
    import inspect

    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [
        {
            "name": p.name,
            "kind": p.kind.name,
            "default": p.default is not inspect.Parameter.empty,
        }
        for p in sig.parameters.values()
    ]


def _ours(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "replicate" or module.startswith("replicate.")


def _describe_class(cls: type) -> dict[str, Any]:
    import enum
    import inspect

    info: dict[str, Any] = {"kind": "class", "members": {}}
    if isinstance(getattr(cls, "__required_keys__", None), frozenset):
        info["typeddict_keys"] = sorted(cls.__annotations__)
        return info
    if issubclass(cls, enum.Enum):
        info["enum_members"] = {m.name: m.value for m in cls}
    fields = getattr(cls, "model_fields", None)
    is_pydantic = isinstance(fields, dict)
    if is_pydantic:
        info["fields"] = sorted(fields)
    elif not issubclass(cls, enum.Enum):
        info["signature"] = _signature(cls)
    for name in sorted(dir(cls)):
        if name.startswith("_") or name in info.get("enum_members", {}):
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is None or not _ours(owner):
            continue
        raw = inspect.getattr_static(cls, name)
        if inspect.isclass(raw):
            if _ours(raw):
                info["members"][name] = _describe_class(raw)
            continue
        kind = _kind(raw)
        entry: dict[str, Any] = {"kind": kind}
        if kind != "data" and kind != "property":
            entry["signature"] = _signature(raw)
        info["members"][name] = entry
    return info


def introspect() -> dict[str, Any]:
    """Run inside the 1.0.7 environment: the surface as a JSON-able dict."""
    import importlib
    import inspect
    import pkgutil
    import types
    import typing

    import typing_extensions

    import replicate

    names = [
        "replicate",
        *sorted(m.name for m in pkgutil.walk_packages(replicate.__path__, "replicate.")),
    ]
    modules: dict[str, Any] = {}
    for module_name in names:
        module = importlib.import_module(module_name)
        entries: dict[str, Any] = {}
        for name in sorted(dir(module)):
            if name.startswith("_") or name == "TYPE_CHECKING":
                continue
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                if value.__name__.startswith("replicate."):
                    entries[name] = {"kind": "module", "module": value.__name__}
                continue
            if (
                getattr(typing, name, None) is value
                or getattr(typing_extensions, name, None) is value
            ):
                continue
            if isinstance(value, typing.TypeVar) or type(value).__module__ == "typing":
                entries[name] = {"kind": "alias"}
                continue
            if inspect.isclass(value):
                if _ours(value):
                    entries[name] = _describe_class(value)
                continue
            if callable(value) and not isinstance(value, type):
                if not _ours(value):
                    continue
                if _ours(type(value)) and not inspect.isroutine(value):
                    entries[name] = {"kind": "instance", "type": type(value).__name__}
                    continue
                entries[name] = {"kind": _kind(value), "signature": _signature(value)}
                continue
            if _ours(type(value)):
                entries[name] = {"kind": "instance", "type": type(value).__name__}
            elif isinstance(value, (bool, int, float, str)):
                entries[name] = {"kind": "data"}
        modules[module_name] = entries
    return {
        "source": SPEC,
        "made_by": "scripts/snapshot_v107_surface.py (black-box introspection, no source read)",
        "python": ".".join(map(str, sys.version_info[:2])),
        "modules": modules,
    }


def _python_of(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def ensure_venv(venv: Path) -> Path:
    """A virtual environment holding replicate 1.0.7 (created when missing); its python."""
    python = _python_of(venv)
    check = [str(python), "-c", "import importlib.metadata as m; print(m.version('replicate'))"]
    if python.exists():
        out = subprocess.run(check, capture_output=True, text=True)
        if out.stdout.strip() == "1.0.7":
            return python
    venv_module.EnvBuilder(clear=True, with_pip=True).create(venv)
    subprocess.run([str(python), "-m", "pip", "install", "-q", SPEC], check=True)
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".bench" / "v107")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "v107_surface.json")
    parser.add_argument("--introspect", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.introspect:
        json.dump(introspect(), sys.stdout, indent=1, sort_keys=True)
        return 0
    python = ensure_venv(args.venv)
    out = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--introspect"],
        capture_output=True,
        text=True,
        check=True,
        cwd=args.venv,  # not the repository: `import replicate` must find 1.0.7
    )
    args.out.write_text(out.stdout + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
