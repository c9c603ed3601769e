"""Base classes for API resources (tolerant pydantic models) and namespaces."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

if TYPE_CHECKING:
    from ._http import Operation
    from .client import Client

__all__ = ["Namespace", "Resource"]

R = TypeVar("R", bound="Resource")
T = TypeVar("T")


class Resource(BaseModel):
    """A resource returned by the API.

    Parsing is tolerant: unknown fields are kept (as attributes and in ``dict()``), missing or
    ``null`` fields become ``None``, and a value of an unexpected type is kept as received instead
    of failing the whole response. Objects built by the library remember the client they came
    from; objects built by users fall back to ``replicate.default_client``.
    """

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        arbitrary_types_allowed=True,
        protected_namespaces=(),
        validate_assignment=False,
    )

    _client: Any = PrivateAttr(default=None)

    # ------------------------------------------------------------------ parsing

    @classmethod
    def _from_api(cls: type[R], data: Any, client: Client | None = None) -> R:
        """Build an instance from API JSON, tolerating unexpected types, and bind it to ``client``."""
        if not isinstance(data, dict):
            from .exceptions import APIResponseValidationError

            raise APIResponseValidationError(
                title="Invalid response body",
                detail=f"Expected a JSON object for {cls.__name__}, got {type(data).__name__}",
                body=data,
            )
        try:
            obj = cls.model_validate(data)
        except ValidationError as exc:
            bad = {str(err["loc"][0]) for err in exc.errors() if err.get("loc")}
            obj = cls.model_validate({k: v for k, v in data.items() if k not in bad})
            for name in bad:
                field = cls.model_fields.get(name)
                if field is not None:
                    obj.__dict__[name] = _tolerant_value(field.annotation, data[name], client)
        if client is not None:
            obj._bind(client)
        return obj

    def _bind(self: R, client: Client | None) -> R:
        """Attach ``client`` to this object and to every nested resource."""
        self._client = client
        for value in self.__dict__.values():
            if isinstance(value, Resource):
                value._bind(client)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, Resource):
                        item._bind(client)
        return self

    def _replace_from(self, other: Resource) -> None:
        """Replace every field with those of ``other`` in one step (used by ``reload``)."""
        fields = dict(other.__dict__)
        extra = dict(other.__pydantic_extra__ or {})
        object.__setattr__(self, "__dict__", fields)
        object.__setattr__(self, "__pydantic_extra__", extra)
        object.__setattr__(self, "__pydantic_fields_set__", set(other.model_fields_set))

    @property
    def _api(self) -> Client:
        """The client of this object, or the current default client."""
        if self._client is not None:
            return self._client  # type: ignore[no-any-return]
        import replicate

        return replicate.default_client

    # ------------------------------------------------------------------ 1.0.x compatible API

    def dict(self, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """The fields (and unknown fields) as a dict, like ``model_dump()``."""
        return self.model_dump(**kwargs)

    def json(self, **kwargs: Any) -> str:  # type: ignore[override]
        """The object as JSON text, like ``model_dump_json()``."""
        return self.model_dump_json(**kwargs)

    def copy(self: R, **kwargs: Any) -> R:  # type: ignore[override]
        """A copy of the object bound to the same client, like ``model_copy()``."""
        clone = self.model_copy(**kwargs)
        clone._client = self._client
        return clone

    @classmethod
    def parse_obj(cls: type[R], obj: Any) -> R:  # type: ignore[override]
        """Build an instance from a dict, like ``model_validate()`` (tolerant)."""
        return cls._from_api(obj)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BaseModel):
            return NotImplemented
        return (
            type(self) is type(other)
            and self.__dict__ == other.__dict__
            and (self.__pydantic_extra__ or {}) == (other.__pydantic_extra__ or {})
        )

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> builtins.dict[Any, Any]:
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private["_client"] = None
        state["__pydantic_private__"] = private
        return state


def _resource_types(annotation: Any) -> tuple[type[Resource] | None, bool]:
    """The Resource class inside ``annotation`` (``X``, ``X | None``, ``list[X]``) and if it is a list."""
    import typing

    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation) or (None,)
        inner, _ = _resource_types(item)
        return inner, True
    if origin is not None:
        for arg in typing.get_args(annotation):
            inner, is_list = _resource_types(arg)
            if inner is not None:
                return inner, is_list
        return None, False
    if isinstance(annotation, type) and issubclass(annotation, Resource):
        return annotation, False
    return None, False


def _tolerant_value(annotation: Any, value: Any, client: Client | None) -> Any:
    """A nested value that failed validation: parse nested resources leniently, else keep it raw."""
    resource, is_list = _resource_types(annotation)
    if resource is None:
        return value
    if is_list and isinstance(value, list):
        return [resource._from_api(v, client) if isinstance(v, dict) else v for v in value]
    if not is_list and isinstance(value, dict):
        return resource._from_api(value, client)
    return value


class Namespace:
    """A group of API operations bound to a :class:`~replicate.client.Client`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(self, op: Operation[T]) -> T:
        return self._client._call(op)

    def _acall(self, op: Operation[T]) -> Awaitable[T]:
        return self._client._acall(op)
