"""Model and version references: ``owner/name``, ``owner/name:version``, bare version ids.

:class:`ModelVersionIdentifier` is the 1.0.x parser of ``owner/name[:version]`` strings (strict).
The private helpers resolve everything ``run()`` and the namespaces accept as a model reference.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["ModelVersionIdentifier"]

_REF = re.compile(r"^(?P<owner>[^/]+)/(?P<name>[^/:]+)(?::(?P<version>.+))?$", re.DOTALL)
_VERSION_ID = re.compile(r"^[0-9a-fA-F]{64}$")


class ModelVersionIdentifier(NamedTuple):
    """A model version reference: ``owner``, ``name`` and an optional ``version`` id."""

    owner: str
    name: str
    version: str | None = None

    @classmethod
    def parse(cls, ref: str) -> ModelVersionIdentifier:
        """Split ``"owner/name"`` or ``"owner/name:version"``.

        Raises :class:`ValueError` for anything else (a bare version id is not accepted here).
        """
        match = _REF.match(ref) if isinstance(ref, str) else None
        if match is None:
            raise ValueError(
                f"Invalid reference to model version: {ref}. Expected format: owner/name:version"
            )
        return cls(match.group("owner"), match.group("name"), match.group("version"))


def is_version_id(value: Any) -> bool:
    """Whether ``value`` is a string of exactly 64 hexadecimal characters (a version id)."""
    return isinstance(value, str) and _VERSION_ID.match(value) is not None


@dataclass(frozen=True)
class ResolvedRef:
    """What a ``run()``-style reference names (docs/run.md, "What a model reference can be").

    Exactly one route applies: ``deployment`` (owner, name) when set, else ``version_id`` when
    set (``POST /v1/predictions``), else ``owner``/``name`` (the model's predictions endpoint).
    ``version`` is the :class:`~replicate.version.Version` object when the ref was one (it carries
    the schema).
    """

    owner: str | None = None
    name: str | None = None
    version_id: str | None = None
    version: Any = None
    deployment: tuple[str, str] | None = None

    @property
    def model(self) -> str | None:
        """``"owner/name"`` when known."""
        if self.owner is None or self.name is None:
            return None
        return f"{self.owner}/{self.name}"


def _invalid_ref(ref: Any) -> ValueError:
    return ValueError(
        f"Invalid argument: {ref}. Expected model, version, or reference in the format "
        "owner/name or owner/name:version"
    )


@functools.lru_cache(maxsize=256)
def _resolve_str(ref: str) -> ResolvedRef:
    # Cached: the same few refs are run over and over, and a ResolvedRef of a string is
    # immutable (frozen, no Version object). Invalid refs raise, and are not cached.
    if is_version_id(ref):
        return ResolvedRef(version_id=ref)
    parsed = ModelVersionIdentifier.parse(ref)
    return ResolvedRef(owner=parsed.owner, name=parsed.name, version_id=parsed.version)


def resolve_ref(ref: Any) -> ResolvedRef:
    """Resolve a model/version/deployment reference without any I/O (docs/run.md, "What a model reference can be")."""
    if type(ref) is str:
        return _resolve_str(ref)
    if isinstance(ref, str):
        return _resolve_str(str(ref))
    if isinstance(ref, ModelVersionIdentifier):
        return ResolvedRef(owner=ref.owner, name=ref.name, version_id=ref.version)
    kind = type(ref).__name__
    module = type(ref).__module__
    if module.startswith("replicate."):
        if kind == "Version" and isinstance(getattr(ref, "id", None), str):
            return ResolvedRef(version_id=ref.id, version=ref)
        if kind == "Model":
            owner, name = getattr(ref, "owner", None), getattr(ref, "name", None)
            if isinstance(owner, str) and isinstance(name, str) and owner and name:
                return ResolvedRef(owner=owner, name=name)
        if kind == "Deployment":
            owner, name = getattr(ref, "owner", None), getattr(ref, "name", None)
            if isinstance(owner, str) and isinstance(name, str) and owner and name:
                return ResolvedRef(deployment=(owner, name))
    raise _invalid_ref(ref)


def split_key(key: Any, *, what: str = "model") -> tuple[str, str]:
    """Split ``"owner/name"`` (exactly one ``/``, both parts non-empty)."""
    if isinstance(key, str):
        owner, sep, name = key.partition("/")
        if sep and owner and name and "/" not in name:
            return owner, name
    raise ValueError(f"Invalid {what} reference: {key}. Expected format: owner/name")


def model_owner_name(model: Any) -> tuple[str, str]:
    """The ``(owner, name)`` of a ``Model``, an ``(owner, name)`` tuple or ``"owner/name"``."""
    if isinstance(model, str):
        if ":" in model:
            raise ValueError(
                f"Invalid reference to model version: {model}. "
                "Expected model or reference in the format owner/name"
            )
        try:
            return split_key(model)
        except ValueError:
            pass
    elif isinstance(model, tuple):
        if (
            len(model) == 2
            and all(isinstance(part, str) and part for part in model)
            and "/" not in model[0]
            and "/" not in model[1]
        ):
            return model[0], model[1]
    elif type(model).__name__ == "Model" and type(model).__module__.startswith("replicate."):
        owner, name = getattr(model, "owner", None), getattr(model, "name", None)
        if isinstance(owner, str) and isinstance(name, str) and owner and name:
            return owner, name
    raise ValueError(
        "model must be a Model, a tuple of (owner, name), or a string in the format 'owner/name'"
    )


def model_key_from_args(
    args: tuple[Any, ...],
    key: str | None = None,
    owner: str | None = None,
    name: str | None = None,
) -> tuple[str, str]:
    """Resolve the 1.0.x model identification forms of ``models.get`` & co. (docs/api.md, "Naming a model").

    Accepted: ``("owner/name")``, ``(owner, name)``, ``(key="owner/name")``,
    ``(owner=..., name=...)``.
    """
    if args and (key is not None or owner is not None or name is not None):
        raise ValueError("Cannot mix positional and keyword arguments")
    if key is not None and (owner is not None or name is not None):
        raise ValueError(
            "Must specify exactly one of 'owner' and 'name' or single 'key' in the format "
            "'owner/name'"
        )
    if len(args) > 2:
        raise ValueError("Invalid number of arguments")
    if len(args) == 1:
        key = args[0]
    elif len(args) == 2:
        owner, name = args
    if key is not None:
        if (
            not isinstance(key, str)
            or key.count("/") != 1
            or key.startswith("/")
            or key.endswith("/")
        ):
            raise ValueError(f"Invalid model reference: {key}. Expected format: owner/name")
        owner, _, name = key.partition("/")
        return owner, name
    if not owner or not name:
        raise ValueError("Both 'owner' and 'name' must be provided if 'key' is not specified.")
    if not isinstance(owner, str) or not isinstance(name, str):
        raise TypeError("owner and name must be strings")
    return owner, name
