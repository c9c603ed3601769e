"""The tolerant Resource base: unknown fields kept, odd values kept, nested parsing, pickling."""

from __future__ import annotations

import pickle
import warnings

import httpx

from replicate.client import Client
from replicate.resource import Resource


class Inner(Resource):
    name: str | None = None
    count: int | None = None


class Outer(Resource):
    id: str | None = None
    size: int | None = None
    inner: Inner | None = None
    items: list[Inner] | None = None


def test_unknown_fields_are_kept_and_missing_are_none() -> None:
    obj = Outer._from_api({"id": "x", "brand_new": {"a": 1}})
    assert obj.id == "x"
    assert obj.size is None
    assert obj.brand_new == {"a": 1}  # type: ignore[attr-defined]
    assert obj.dict()["brand_new"] == {"a": 1}


def test_wrong_scalar_types_are_kept_as_received() -> None:
    obj = Outer._from_api({"id": 5, "size": "big"})
    assert obj.id == 5
    assert obj.size == "big"


def test_one_odd_nested_value_keeps_the_rest_typed() -> None:
    obj = Outer._from_api(
        {
            "id": "x",
            "inner": {"name": "a", "count": "many"},
            "items": [{"name": "b", "count": 1}, {"name": "c", "count": [1]}, "junk"],
        }
    )
    assert isinstance(obj.inner, Inner)
    assert obj.inner.count == "many"
    assert obj.items is not None
    assert isinstance(obj.items[0], Inner) and obj.items[0].count == 1
    assert isinstance(obj.items[1], Inner) and obj.items[1].count == [1]
    assert obj.items[2] == "junk"


def test_client_binding_reaches_nested_resources_and_is_not_pickled() -> None:
    client = Client("t", transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    obj = Outer._from_api({"inner": {"name": "a"}, "items": [{"name": "b"}]}, client)
    assert obj._client is client
    assert obj.inner is not None and obj.inner._client is client
    assert obj.items is not None and obj.items[0]._client is client
    clone = pickle.loads(pickle.dumps(obj))
    assert clone == obj
    assert clone._client is None


def test_compat_methods_without_warnings() -> None:
    obj = Outer._from_api({"id": "x", "extra": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert obj.dict() == {"id": "x", "size": None, "inner": None, "items": None, "extra": 1}
        assert '"extra":1' in obj.json()
        assert obj.copy() == obj
        assert Outer.parse_obj({"id": "x", "extra": 1}) == obj
    assert dict(obj)["id"] == "x"


def test_reload_replacement_is_whole() -> None:
    obj = Outer._from_api({"id": "x", "size": 1, "old": True})
    obj._replace_from(Outer._from_api({"id": "x", "size": 2, "new": True}))
    assert obj.size == 2
    assert obj.new is True  # type: ignore[attr-defined]
    assert not hasattr(obj, "old")
