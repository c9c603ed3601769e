"""The import rules of ARCHITECTURE.md, checked over the source files with ``ast``.

Every ``import``/``from ... import`` statement counts, wherever it is (module level, inside
a function, under ``if TYPE_CHECKING``): a lazy import is still a dependency.

1. The client (``src/replicate/*.py`` but ``__main__.py``, which is ``python -m replicate``,
   the command line) never imports ``replicate.local`` nor ``replicate.cli``.
2. No module of ``replicate.local`` imports ``replicate.local.app`` (the app assembles the
   parts; the parts share ``routing`` and the core), except the entry points that build the
   app: ``server.py`` (``serve``/``LocalServer``) and ``cli.py`` (``replicate serve``).
3. ``replicate.local.cog`` imports nothing else of ``replicate.local`` (Cog support stands on
   its own and is handed the server's registry), and its scripts (run in the model's own
   interpreter) import nothing of ``replicate`` at all.
4. The client's sans-I/O core (``_http``, ``_retry``, ``_polling``, ``_sse``) imports nothing
   of ours but ``exceptions`` (and each other).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "replicate"

#: Modules of ``replicate.local`` that build the app and so may import ``local.app``.
APP_ENTRY_POINTS = {"replicate.local.server", "replicate.local.cli"}
#: Scripts run inside a model's interpreter (by path, never imported by the server).
COG_SCRIPTS = {"schema_probe.py", "setup_tee.py", "supervise.py"}
CORE_MODULES = {"_http", "_retry", "_polling", "_sse"}


def module_name(path: Path) -> str:
    """``src/replicate/local/app.py`` -> ``replicate.local.app`` (packages: their ``__init__``)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in the file ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    yield from imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``source`` (a module of ``package``).

    ``from X import a`` yields ``X`` and ``X.a`` (``a`` may be a submodule), with relative
    imports resolved against ``package``.
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(files: list[Path], forbidden: str) -> list[str]:
    return [
        f"{path.relative_to(SRC)}:{line} imports {target}"
        for path in files
        for line, target in imported_modules(path)
        if within(target, forbidden)
    ]


def client_files() -> list[Path]:
    # ``__main__.py`` is ``python -m replicate``: the command line's entry point, not the client.
    return sorted(p for p in PACKAGE.glob("*.py") if p.name != "__main__.py")


def local_files() -> list[Path]:
    return sorted((PACKAGE / "local").rglob("*.py"))


def test_the_rules_see_the_source() -> None:
    # Guards the checks below against passing on an empty or misread tree.
    assert len(client_files()) > 10
    assert (PACKAGE / "local" / "app.py") in local_files()
    server_imports = {t for _, t in imported_modules(PACKAGE / "local" / "server.py")}
    assert "replicate.local.app" in server_imports
    catalogue = PACKAGE / "local" / "catalogue" / "__init__.py"
    assert "replicate.local.routing" in {t for _, t in imported_modules(catalogue)}


@pytest.mark.parametrize("forbidden", ["replicate.local", "replicate.cli"])
def test_client_never_imports_the_server_or_the_cli(forbidden: str) -> None:
    assert violations(client_files(), forbidden) == []


def test_parts_of_the_local_server_never_import_the_app() -> None:
    parts = [p for p in local_files() if module_name(p) not in APP_ENTRY_POINTS]
    assert violations(parts, "replicate.local.app") == []


def test_cog_support_stands_on_its_own() -> None:
    cog = PACKAGE / "local" / "cog"
    modules = [p for p in sorted(cog.glob("*.py")) if p.name not in COG_SCRIPTS]
    outside = [
        f"{path.relative_to(SRC)}:{line} imports {target}"
        for path in modules
        for line, target in imported_modules(path)
        if within(target, "replicate.local") and not within(target, "replicate.local.cog")
    ]
    assert outside == []
    scripts = [cog / name for name in sorted(COG_SCRIPTS)]
    assert violations(scripts, "replicate") == []


def test_the_client_core_imports_only_exceptions() -> None:
    allowed = {"replicate.exceptions"} | {f"replicate.{m}" for m in CORE_MODULES}
    found = [
        f"{path.relative_to(SRC)}:{line} imports {target}"
        for path in client_files()
        if path.stem in CORE_MODULES
        for line, target in imported_modules(path)
        if within(target, "replicate")
        and not any(within(target, a) for a in allowed)
        and target.rpartition(".")[0] not in allowed  # `from .exceptions import X`
    ]
    assert found == []


@pytest.mark.parametrize(
    ("source", "package", "expected"),
    [
        ("from ..app import LocalApi\n", "replicate.local.catalogue", "replicate.local.app"),
        ("def f():\n    from . import app\n", "replicate.local", "replicate.local.app"),
        ("import replicate.local.app as a\n", "replicate.local", "replicate.local.app"),
        ("from .local import serve\n", "replicate", "replicate.local"),
    ],
)
def test_the_checker_resolves_imports(source: str, package: str, expected: str) -> None:
    # A relative, lazy or aliased import of a forbidden module is still seen.
    assert expected in {target for _, target in imports_in(source, package)}
