"""The 1.0.x surface, locked: every public name of replicate 1.0.7 at the same import path.

``tests/data/v107_surface.json`` is a black-box introspection of replicate 1.0.7 (names, kinds,
signatures; regenerate it with ``python scripts/snapshot_v107_surface.py``). For every module,
name, class member, pydantic field, TypedDict key and enum member recorded there, this test
checks that the same path exists here, that functions are of the same kind (plain / generator /
async generator / coroutine function, so wrappers testing for them see what they saw), and that
signatures accept the same parameters (same names and kinds; extra parameters are allowed when
optional; a keyword-only parameter may become positional-or-keyword). Documented deviations are in
``ALLOWED`` below with their reason (docs/differences-from-1.0.md).
"""

from __future__ import annotations

import enum
import importlib
import inspect
import json
import types
from pathlib import Path
from typing import Any

import pytest

SNAPSHOT_PATH = Path(__file__).resolve().parent.parent / "data" / "v107_surface.json"
SNAPSHOT: dict[str, Any] = json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8"))

# path -> reason. A path is "module:Name" / "module:Name.member" (that path only) or "Name" /
# "Name.member" (the object wherever 1.0.x exported it). An entry relaxes the kind and signature
# checks of that path; its existence is always checked.
ALLOWED: dict[str, str] = {
    "ReplicateError": (
        "constructor ReplicateError(*args, type=, title=, status=, detail=, instance=, ...): the "
        "five 1.0.x positional arguments are still accepted through *args, and a single "
        "positional argument is the message (weakness 30)"
    ),
    "Models.create": (
        "the keys of 1.0.x's **params: Unpack[CreateModelParams] are explicit keyword-only "
        "parameters; visibility and hardware are required there as they were required keys of "
        "CreateModelParams; unknown keywords raise TypeError (weakness 9)"
    ),
    "Models.async_create": "as Models.create",
    "Trainings.async_create": (
        "accepts every form of Trainings.create through *args and model=/version=/input= "
        "keywords, positional (model, version, input) included (weakness 35)"
    ),
}


def _allowed(path: str) -> bool:
    return path in ALLOWED or path.partition(":")[2] in ALLOWED


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class Counter:
    names = 0
    signatures = 0


def _load_snapshot_script() -> Any:
    """The script that made the snapshot: its ``_kind`` classifies our objects too, so both sides
    of the comparison are described by one rule."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "snapshot_v107_surface.py"
    spec = importlib.util.spec_from_file_location("snapshot_v107_surface", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_kind = _load_snapshot_script()._kind


def _compatible_kind(theirs: str, ours: str) -> bool:
    if theirs == ours:
        return True
    # A plain callable object standing in for a plain function (e.g. replicate.stream, which also
    # carries ServerSentEvent/EventSource attributes) is fine; the async kinds must match exactly.
    plain = {"function", "callable"}
    if theirs in plain and ours in plain:
        return True
    # A cached_property or other descriptor in place of a property.
    return theirs == "property" and ours == "data"


def _signature_problems(theirs: list[dict[str, Any]], obj: Any) -> list[str]:
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ["no signature"]
    ours = list(sig.parameters.values())
    by_name = {p.name: p for p in ours}
    positional = [p for p in ours if p.kind in _POSITIONAL]
    problems: list[str] = []
    their_positional = [p for p in theirs if p["kind"] in {k.name for k in _POSITIONAL}]
    for index, param in enumerate(theirs):
        kind, name = param["kind"], param["name"]
        if kind == "VAR_POSITIONAL":
            if not any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in ours):
                problems.append(f"*{name} missing")
            continue
        if kind == "VAR_KEYWORD":
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ours):
                problems.append(f"**{name} missing")
            continue
        if kind in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD"):
            pos = their_positional.index(param)
            if pos >= len(positional):
                problems.append(f"positional {name} missing")
                continue
            mine = positional[pos]
            if kind == "POSITIONAL_OR_KEYWORD" and (
                mine.name != name or mine.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD
            ):
                problems.append(f"parameter {pos} is {mine.name} ({mine.kind.name}), not {name}")
                continue
        else:
            mine = by_name.get(name)  # type: ignore[assignment]
            if mine is None or mine.kind not in (
                inspect.Parameter.KEYWORD_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            ):
                problems.append(f"keyword {name} missing")
                continue
        if param["default"] and mine.default is inspect.Parameter.empty:
            problems.append(f"{name} lost its default")
        del index
    known = {p["name"] for p in theirs}
    for p in ours:
        if p.name in known or p.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            continue
        if p.default is inspect.Parameter.empty:
            problems.append(f"extra required parameter {p.name}")
    return problems


def _check_callable(path: str, entry: dict[str, Any], raw: Any, problems: list[str]) -> None:
    if _allowed(path):
        return
    theirs_kind = entry["kind"]
    ours_kind = _kind(raw)
    if not _compatible_kind(theirs_kind, ours_kind):
        problems.append(f"{path}: kind {ours_kind}, 1.0.x {theirs_kind}")
        return
    signature = entry.get("signature")
    if signature is not None and ours_kind != "data":
        Counter.signatures += 1
        for problem in _signature_problems(signature, raw):
            problems.append(f"{path}: {problem}")


def _check_class(path: str, entry: dict[str, Any], cls: Any, problems: list[str]) -> None:
    if not inspect.isclass(cls):
        problems.append(f"{path}: not a class")
        return
    keys = entry.get("typeddict_keys")
    if keys is not None:
        annotations: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            annotations.update(getattr(klass, "__annotations__", {}))
        for key in keys:
            Counter.names += 1
            if key not in annotations:
                problems.append(f"{path}: TypedDict key {key} missing")
        return
    for name, value in entry.get("enum_members", {}).items():
        Counter.names += 1
        member = getattr(cls, name, None)
        if not isinstance(member, enum.Enum) or member.value != value:
            problems.append(f"{path}.{name}: enum member missing or different")
    fields = entry.get("fields")
    if fields is not None:
        ours = getattr(cls, "model_fields", None)
        for field in fields:
            Counter.names += 1
            if not (isinstance(ours, dict) and field in ours) and not hasattr(cls, field):
                problems.append(f"{path}: field {field} missing")
    signature = entry.get("signature")
    if signature is not None and not _allowed(path):
        Counter.signatures += 1
        for problem in _signature_problems(signature, cls):
            problems.append(f"{path}(): {problem}")
    for name, member in entry["members"].items():
        Counter.names += 1
        member_path = f"{path}.{name}"
        try:
            raw = inspect.getattr_static(cls, name)
        except AttributeError:
            # A field default in 1.0.x (e.g. a pydantic field with a value).
            fields = getattr(cls, "model_fields", None) or {}
            if (member["kind"] == "data" or _allowed(member_path)) and (
                hasattr(cls, name) or name in fields
            ):
                continue
            problems.append(f"{member_path}: missing")
            continue
        if member["kind"] == "class":
            _check_class(member_path, member, raw, problems)
        else:
            _check_callable(member_path, member, raw, problems)


def _check_module(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    problems: list[str] = []
    for name, entry in SNAPSHOT["modules"][module_name].items():
        Counter.names += 1
        path = f"{module_name}:{name}"
        if not hasattr(module, name):
            problems.append(f"{path}: missing")
            continue
        value = getattr(module, name)
        kind = entry["kind"]
        if kind == "module":
            if not _allowed(path) and not isinstance(value, types.ModuleType):
                problems.append(f"{path}: not a module")
        elif kind == "class":
            _check_class(path, entry, value, problems)
        elif kind in ("instance", "data", "alias"):
            continue
        else:
            _check_callable(path, entry, value, problems)
    return problems


@pytest.mark.parametrize("module_name", sorted(SNAPSHOT["modules"]))
def test_module_surface_matches_v107(module_name: str) -> None:
    problems = _check_module(module_name)
    assert not problems, "\n".join(problems)


def test_snapshot_is_large_and_checked() -> None:
    """The snapshot covers the whole package, so a broken regeneration cannot pass silently."""
    Counter.names = Counter.signatures = 0
    for module_name in SNAPSHOT["modules"]:
        _check_module(module_name)
    assert SNAPSHOT["source"] == "replicate==1.0.7"
    assert len(SNAPSHOT["modules"]) >= 20
    assert Counter.names >= 500, Counter.names
    assert Counter.signatures >= 300, Counter.signatures


def test_every_allow_list_entry_is_still_needed() -> None:
    """An entry whose deviation is gone must be removed, so the list stays an honest record."""
    for path in list(ALLOWED):
        reason = ALLOWED.pop(path)
        try:
            problems = [p for name in SNAPSHOT["modules"] for p in _check_module(name)]
        finally:
            ALLOWED[path] = reason
        assert problems, f"{path} is allowed but matches 1.0.x: remove it from ALLOWED"


def _snapshot_entry(module_name: str, dotted: str) -> Any:
    head, *rest = dotted.split(".")
    entry = SNAPSHOT["modules"][module_name][head]
    for part in rest:
        entry = entry["members"][part]
    return entry


def test_allow_list_entries_exist_in_snapshot() -> None:
    """Every deviation names a real 1.0.x path and gives a reason."""
    for path, reason in ALLOWED.items():
        assert reason.strip()
        if ":" in path:
            module_name, _, dotted = path.partition(":")
            assert _snapshot_entry(module_name, dotted)
            continue
        found = []
        for module_name in SNAPSHOT["modules"]:
            try:
                found.append(_snapshot_entry(module_name, path))
            except KeyError:
                pass
        assert found, path


def test_use_file_output_is_explicit_in_run_and_stream() -> None:
    """Not hidden in ``**params``: tools reading signatures (and readers) see it, as in 1.0.x."""
    import replicate
    from replicate.client import Client

    for fn in (
        replicate.run,
        replicate.async_run,
        replicate.stream.__call__,
        replicate.async_stream,
        Client.run,
        Client.async_run,
        Client.stream,
        Client.async_stream,
    ):
        param = inspect.signature(fn).parameters["use_file_output"]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is True, fn
