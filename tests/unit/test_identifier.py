"""ModelVersionIdentifier and the private ref-resolution helpers (docs/run.md, "What a model reference can be"; docs/api.md,
"Naming a model")."""

from __future__ import annotations

import pytest

from replicate.identifier import (
    ModelVersionIdentifier,
    is_version_id,
    model_key_from_args,
    model_owner_name,
    resolve_ref,
)

VID = "a" * 32 + "0123456789abcdef" * 2


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("owner/name", ("owner", "name", None)),
        ("owner/name:v1", ("owner", "name", "v1")),
        ("owner/name:v:1/x", ("owner", "name", "v:1/x")),
        (f"meta/llama:{VID}", ("meta", "llama", VID)),
    ],
)
def test_parse_valid(ref: str, expected: tuple[str, str, str | None]) -> None:
    parsed = ModelVersionIdentifier.parse(ref)
    assert tuple(parsed) == expected
    assert parsed.owner == expected[0]


@pytest.mark.parametrize(
    "ref", ["", "name", "owner/", "/name", "a/b/c", "owner/name:", VID, "o/n/x:v"]
)
def test_parse_invalid(ref: str) -> None:
    with pytest.raises(ValueError, match="Invalid reference to model version") as info:
        ModelVersionIdentifier.parse(ref)
    assert str(info.value) == (
        f"Invalid reference to model version: {ref}. Expected format: owner/name:version"
    )


def test_named_tuple_defaults() -> None:
    ident = ModelVersionIdentifier("a", "b")
    assert ident.version is None
    assert ident == ("a", "b", None)


def test_is_version_id() -> None:
    assert is_version_id(VID)
    assert is_version_id(VID.upper())
    assert not is_version_id(VID[:-1])
    assert not is_version_id("g" * 64)
    assert not is_version_id(None)


def test_resolve_ref_strings() -> None:
    assert resolve_ref(VID).version_id == VID
    assert resolve_ref(VID).owner is None
    ref = resolve_ref("a/b")
    assert (ref.owner, ref.name, ref.version_id, ref.model) == ("a", "b", None, "a/b")
    ref = resolve_ref("a/b:v")
    assert (ref.owner, ref.name, ref.version_id) == ("a", "b", "v")
    with pytest.raises(ValueError, match="Invalid reference to model version"):
        resolve_ref("nope")


def test_resolve_ref_objects() -> None:
    from replicate.model import Model
    from replicate.version import Version

    assert resolve_ref(ModelVersionIdentifier("a", "b", "v")).version_id == "v"
    assert resolve_ref(Model(owner="a", name="b")).model == "a/b"
    version = Version(id=VID)
    ref = resolve_ref(version)
    assert ref.version_id == VID and ref.version is version
    for bad in (42, None, object(), Model(owner="a")):
        with pytest.raises(ValueError, match=r"^Invalid argument: .* Expected model, version"):
            resolve_ref(bad)


def test_model_owner_name() -> None:
    from replicate.model import Model

    assert model_owner_name("a/b") == ("a", "b")
    assert model_owner_name(("a", "b")) == ("a", "b")
    assert model_owner_name(Model(owner="a", name="b")) == ("a", "b")
    with pytest.raises(ValueError, match="Invalid reference to model version: a/b:v"):
        model_owner_name("a/b:v")
    for bad in ("ab", "a/b/c", ("a",), ("a", 1), 3, None):
        with pytest.raises(ValueError, match="model must be a Model, a tuple"):
            model_owner_name(bad)


def test_model_key_forms() -> None:
    assert model_key_from_args(("a/b",)) == ("a", "b")
    assert model_key_from_args(("a", "b")) == ("a", "b")
    assert model_key_from_args((), key="a/b") == ("a", "b")
    assert model_key_from_args((), owner="a", name="b") == ("a", "b")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("a/b",), {"key": "a/b"}, "Cannot mix positional and keyword arguments"),
        (("a",), {"name": "b"}, "Cannot mix positional and keyword arguments"),
        ((), {"key": "a/b", "owner": "a"}, "Must specify exactly one of 'owner' and 'name'"),
        (("a", "b", "c"), {}, "Invalid number of arguments"),
        ((), {}, "Both 'owner' and 'name' must be provided"),
        ((), {"owner": "a"}, "Both 'owner' and 'name' must be provided"),
        (("ab",), {}, "Invalid model reference: ab. Expected format: owner/name"),
        ((), {"key": "a/b/c"}, "Invalid model reference: a/b/c"),
    ],
)
def test_model_key_errors(args: tuple[str, ...], kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        model_key_from_args(args, **kwargs)
    assert str(info.value).startswith(message)


def test_resolve_ref_deployment() -> None:
    deployment_module = pytest.importorskip("replicate.deployment")
    ref = resolve_ref(deployment_module.Deployment(owner="acme", name="dep"))
    assert ref.deployment == ("acme", "dep")
    assert ref.version_id is None and ref.owner is None
    with pytest.raises(ValueError, match="Invalid argument"):
        resolve_ref(deployment_module.Deployment(owner="acme"))
