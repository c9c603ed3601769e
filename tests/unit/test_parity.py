"""Every public sync method has an async twin with the same parameters (docs/api.md)."""

from __future__ import annotations

import importlib
import inspect

import pytest

import replicate

# Method names whose async twin is named differently, or that have no I/O of their own.
NO_TWIN = {
    "dict",
    "json",
    "copy",
    "parse_obj",
    "close",
    "validate",
    "model_dump",
    "model_dump_json",
    "model_copy",
    "model_validate",
    "model_validate_json",
    "model_post_init",
    "model_construct",
    "model_rebuild",
    "model_json_schema",
    "model_parametrized_name",
    "model_validate_strings",
    "construct",
    "from_orm",
    "parse_file",
    "parse_raw",
    "schema",
    "schema_json",
    "update_forward_refs",
    "validate_call",
    "parse",
    "predict",
    "use",
}
SPECIAL_TWINS = {"read": "aread", "save": "asave", "close": "aclose"}

MODULES = [
    "replicate.client",
    "replicate.prediction",
    "replicate.model",
    "replicate.version",
    "replicate.training",
    "replicate.deployment",
    "replicate.collection",
    "replicate.hardware",
    "replicate.file",
    "replicate.account",
    "replicate.webhook",
    "replicate.helpers",
]


def _public_classes() -> list[type]:
    classes: list[type] = []
    for name in MODULES:
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == module.__name__ and not obj.__name__.startswith("_"):
                classes.append(obj)
    return classes


def _sync_methods(cls: type) -> list[str]:
    names = []
    for name, member in inspect.getmembers(cls):
        if name.startswith(("_", "async_")) or name in SPECIAL_TWINS.values():
            continue
        if inspect.iscoroutinefunction(member):
            continue
        if not inspect.isfunction(member):
            continue
        if name in NO_TWIN or name.startswith("model_"):
            continue
        defined_here = any(
            name in vars(base) for base in cls.__mro__ if base.__module__.startswith("replicate")
        )
        if not defined_here:
            continue
        names.append(name)
    return names


def _params(func: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(func)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


CASES = [(cls, name) for cls in _public_classes() for name in _sync_methods(cls)]


@pytest.mark.parametrize(("cls", "name"), CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
def test_async_twin_has_same_parameters(cls: type, name: str) -> None:
    twin_name = SPECIAL_TWINS.get(name, f"async_{name}")
    twin = getattr(cls, twin_name, None)
    assert twin is not None, f"{cls.__name__}.{name} has no async twin {twin_name}"
    sync = getattr(cls, name)
    assert _params(twin) == _params(sync), f"{cls.__name__}.{twin_name} differs from {name}"


def test_module_level_twins() -> None:
    assert _params(replicate.run) == _params(replicate.async_run)
    assert _params(replicate.search) == _params(replicate.async_search)
    assert _params(replicate.stream.__call__) == _params(replicate.async_stream)


def test_there_are_many_cases() -> None:
    assert len(CASES) >= 40
