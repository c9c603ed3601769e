"""No ``null`` where the real API never sends one, and the same JSON types, on every resource.

Official clients validate what they parse: replicate-python 1.0.x rejects a version whose
``cog_version`` is ``null``, for one. So, per kind of object (version, model, prediction,
collection, file, hardware, page, ...), the recordings in ``tests/data/recordings`` tell which
keys the real API sent and whether it ever sent them as ``null``. Then a tour of the local server
(every resource, predictions and trainings in each state) must never answer ``null`` for a key the
real API only ever sent non-null, and every non-null value must have a JSON type the real API
used for that key. Kinds without a recording (deployments, the account, the webhook secret)
are held to the official spec instead: no ``null`` for a property it does not mark nullable.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from replicate.local.server import LocalServer

from .test_recording_parity import (
    HELLO,
    OPAQUE_KEYS,
    PARAMS,
    TRAIN_INPUT,
    TRAINABLE,
    USERNAME,
    _kind,
    _media_type,
    _resolve,
    _response_schema,
    load,
)

#: Per (kind, key): the JSON types the real API sent (``"null"`` included when it sent null).
Observed = dict[tuple[str, str], set[str]]


def kind_of(obj: dict[str, Any], fallback: str) -> str:
    """The resource kind of a JSON object, from its keys (nested plain objects: ``parent.key``)."""
    keys = set(obj)
    if "openapi_schema" in keys or "cog_version" in keys:
        return "version"
    if "current_release" in keys:
        return "deployment"
    if {"checksums", "content_type"} <= keys:
        return "file"
    if "sku" in keys:
        return "hardware"
    if "slug" in keys:
        return "collection"
    if {"status", "input", "urls"} <= keys:
        return "prediction"
    if {"owner", "name", "visibility"} <= keys or "run_count" in keys:
        return "model"
    if "results" in keys:
        return "page"
    if {"type", "username"} <= keys:
        return "account"
    return fallback


def walk(value: Any, kind: str, visit: Any) -> None:
    """Call ``visit(kind, key, value)`` for every key of every object in ``value``."""
    if isinstance(value, list):
        for item in value:
            walk(item, kind + "[]", visit)
        return
    if not isinstance(value, dict):
        return
    kind = kind_of(value, kind)
    for key, sub in value.items():
        visit(kind, key, sub)
        if key not in OPAQUE_KEYS:
            walk(sub, f"{kind}.{key}", visit)


@functools.lru_cache(maxsize=1)
def observed() -> Observed:
    """What the recordings show, per (kind, key)."""
    seen: Observed = {}

    def visit(kind: str, key: str, value: Any) -> None:
        seen.setdefault((kind, key), set()).add(_kind(value))

    for param in PARAMS:
        name, index = param.values
        ex = load(str(name))[int(index)]
        if ex.status < 300 and _media_type(ex.headers.get("content-type")).endswith("json"):
            walk(ex.json(), "response", visit)
    return seen


def null_problems(label: str, body: Any, seen: Observed | None = None) -> list[str]:
    """Keys answered ``null`` (or with another JSON type) where the real API never did."""
    seen = observed() if seen is None else seen
    problems: list[str] = []

    def visit(kind: str, key: str, value: Any) -> None:
        real = seen.get((kind, key))
        if real is None:
            return
        local = _kind(value)
        if local == "null" and "null" not in real:
            problems.append(f"{label}: {kind}.{key} is null locally, never null in the recordings")
        elif local != "null" and key not in OPAQUE_KEYS and local not in real:
            problems.append(
                f"{label}: {kind}.{key} is {local} locally, {sorted(real)} in the recordings"
            )

    walk(body, "response", visit)
    return problems


def spec_null_problems(label: str, body: Any, schema: Any, path: str = "$") -> list[str]:
    """Properties the spec does not mark nullable but the local server answers ``null``."""
    node = _resolve(schema)
    if not isinstance(node, dict):
        return []
    problems: list[str] = []
    if isinstance(body, list):
        for item in body:
            problems += spec_null_problems(label, item, node.get("items"), path + "[]")
    elif isinstance(body, dict):
        for key, prop in node.get("properties", {}).items():
            prop = _resolve(prop)
            if key not in body or key in OPAQUE_KEYS:
                continue
            if body[key] is None and not (isinstance(prop, dict) and prop.get("nullable")):
                problems.append(f"{label}: {path}.{key} is null locally, not nullable in the spec")
            else:
                problems += spec_null_problems(label, body[key], prop, f"{path}.{key}")
    return problems


# ---------------------------------------------------------------------------- the tour


class Tour:
    """Every resource of the local server, in each state a client can see."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=server.base_url + "/v1",
            headers={"Authorization": f"Bearer {server.api_token}"},
            timeout=60,
        )
        self.answers: list[tuple[str, str, str, Any]] = []  # (label, method, path, body)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.http.request(method, path, **kwargs)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:300]}"
        body = r.json() if r.content else None
        self.answers.append((f"{method} {path}", method, path.split("?")[0], body))
        return body

    def wait(self, kind: str, pid: str, statuses: set[str]) -> Any:
        """Poll until the object is in one of ``statuses`` (the server's own wait)."""
        self.server.wait_for_status(pid, *statuses, timeout=120)
        return self.call("GET", f"/{kind}/{pid}")

    def run(self) -> None:
        self.call("GET", "/account")
        self.call("GET", "/hardware")
        self.call("GET", "/webhooks/default/secret")
        self.call("GET", "/models")
        self.call("GET", f"/models/{HELLO}")
        self.call("GET", "/models/local-demo/stream-text")
        versions = self.call("GET", f"/models/{HELLO}/versions")
        self.call("GET", f"/models/{HELLO}/versions/{versions['results'][0]['id']}")
        self.call("GET", f"/models/{HELLO}/examples")
        self.call("QUERY", "/models", content=b"hello", headers={"Content-Type": "text/plain"})
        self.call("GET", "/search?query=hello")
        empty = {"owner": USERNAME, "name": "no-nulls-empty", "visibility": "private"}
        self.call("POST", "/models", json={**empty, "hardware": "cpu"})
        self.call("GET", f"/models/{USERNAME}/no-nulls-empty")
        slug = self.call("GET", "/collections")["results"][0]["slug"]
        self.call("GET", f"/collections/{slug}")
        # Files.
        up = self.call("POST", "/files", files={"content": ("a.txt", b"hi", "text/plain")})
        self.call("GET", f"/files/{up['id']}")
        self.call("GET", "/files")
        # Predictions: starting, processing, succeeded, failed, canceled; streaming; lists.
        body = {"version": HELLO, "input": {"text": "x"}}
        held = self.call(
            "POST",
            "/predictions",
            json={**body, "version": "local-demo/sleep"} | {"input": {"seconds": 30, "tick": 0.1}},
        )
        self.wait("predictions", held["id"], {"processing"})
        self.call("POST", f"/predictions/{held['id']}/cancel")
        self.wait("predictions", held["id"], {"canceled"})
        done = self.call("POST", "/predictions", json=body, headers={"Prefer": "wait"})
        self.call("GET", f"/predictions/{done['id']}")
        fast = self.call("POST", f"/models/{HELLO}/predictions", json={"input": {"text": "y"}})
        self.wait("predictions", fast["id"], {"succeeded"})
        self.server.script(HELLO, {"error": "boom"})
        failed = self.call("POST", "/predictions", json=body)
        self.wait("predictions", failed["id"], {"failed"})
        stream = {"prompt": "p", "max_tokens": 2, "delay_ms": 0}
        streamed = self.call(
            "POST", "/models/local-demo/stream-text/predictions", json={"input": stream}
        )
        self.wait("predictions", streamed["id"], {"succeeded"})
        made = self.call(
            "POST",
            "/models/local-demo/make-file/predictions",
            json={"input": {"text": "x"}},
            headers={"Prefer": "wait"},
        )
        assert made["status"] == "succeeded", made
        self.call("GET", "/predictions")
        # Trainings: created, succeeded, canceled, listed.
        vid = self.call("GET", f"/models/{TRAINABLE}")["latest_version"]["id"]
        for n in (1, 2):
            dest = {"owner": USERNAME, "name": f"no-nulls-dest{n}", "visibility": "private"}
            self.call("POST", "/models", json={**dest, "hardware": "cpu"})
        path = f"/models/{TRAINABLE}/versions/{vid}/trainings"
        train = {"destination": f"{USERNAME}/no-nulls-dest1", "input": dict(TRAIN_INPUT)}
        t = self.call("POST", path, json=train)
        self.wait("trainings", t["id"], {"succeeded"})
        self.call("GET", f"/models/{USERNAME}/no-nulls-dest1")
        self.call("GET", f"/models/{USERNAME}/no-nulls-dest1/versions")

        # A training that runs until it is canceled.
        def train(greeting: str = "hi", cancel_event: Any = None) -> bytes:
            cancel_event.wait(120)
            return greeting.encode()

        slow = f"{USERNAME}/no-nulls-slow-trainer"
        slow_vid = self.server.register(slow, lambda text: text, train=train)
        dest2 = f"{USERNAME}/no-nulls-dest2"
        t2 = self.call(
            "POST",
            f"/models/{slow}/versions/{slow_vid}/trainings",
            json={"destination": dest2, "input": {"greeting": "x"}},
        )
        self.wait("trainings", t2["id"], {"processing"})
        self.call("POST", f"/trainings/{t2['id']}/cancel")
        self.wait("trainings", t2["id"], {"canceled"})
        self.call("GET", "/trainings")
        # Deployments.
        dep = {
            "name": "no-nulls",
            "model": HELLO,
            "version": versions["results"][0]["id"],
            "hardware": "cpu",
            "min_instances": 0,
            "max_instances": 1,
        }
        self.call("POST", "/deployments", json=dep)
        self.call("GET", f"/deployments/{USERNAME}/no-nulls")
        self.call("PATCH", f"/deployments/{USERNAME}/no-nulls", json={"max_instances": 2})
        self.call("GET", "/deployments")
        p = self.call(
            "POST",
            f"/deployments/{USERNAME}/no-nulls/predictions",
            json={"input": {"text": "d"}},
            headers={"Prefer": "wait"},
        )
        self.call("GET", f"/predictions/{p['id']}")


@pytest.fixture(scope="module")
def tour() -> Iterator[Tour]:
    with LocalServer(test_controls=True) as server:
        t = Tour(server)
        try:
            t.run()
            yield t
        finally:
            t.http.close()


#: Paths whose answers no recording covers: held to the spec's nullability instead.
SPEC_ONLY = ("/account", "/webhooks/default/secret", "/deployments", "/search")


def test_recordings_show_the_kinds() -> None:
    """The classifier sees the recorded resources (else the check below would be empty)."""
    kinds = {kind for kind, _ in observed()}
    for kind in ("version", "model", "prediction", "collection", "file", "hardware", "page"):
        assert kind in kinds, sorted(kinds)
    assert observed()[("version", "cog_version")] == {"string"}


def test_no_null_where_the_real_api_never_sends_one(tour: Tour) -> None:
    """Every answer of the tour: no ``null`` and no JSON type the real API never used."""
    problems: list[str] = []
    for label, method, path, body in tour.answers:
        problems += null_problems(label, body)
        if path.startswith(SPEC_ONLY):
            spec_path = path[len("/v1") :] if path.startswith("/v1") else path
            schema = _response_schema(method, spec_path, 201 if method == "POST" else 200)
            problems += spec_null_problems(label, body, schema)
    assert not problems, "\n".join(problems)


def test_the_tour_covers_every_resource(tour: Tour) -> None:
    """The tour visits every kind of object a client parses, in each prediction state."""
    kinds: set[str] = set()
    statuses: set[str] = set()

    def visit(kind: str, key: str, value: Any) -> None:
        kinds.add(kind)
        if kind == "prediction" and key == "status":
            statuses.add(value)

    for _, _, _, body in tour.answers:
        walk(body, "response", visit)
    for kind in ("version", "model", "prediction", "collection", "file", "hardware", "page"):
        assert kind in kinds
    assert {"deployment", "account"} <= kinds
    assert {"starting", "processing", "succeeded", "failed", "canceled"} <= statuses


def test_the_check_can_fail() -> None:
    """A version with ``cog_version: null`` and a prediction with a numeric ``id`` are caught."""
    version = {"id": "v", "created_at": "2024-01-01T00:00:00Z", "cog_version": None}
    assert null_problems(
        "v", {"latest_version": version, "owner": "o", "name": "n", "visibility": "public"}
    ) == ["v: version.cog_version is null locally, never null in the recordings"]
    pred = json.loads(json.dumps({"id": 5, "status": "starting", "input": {}, "urls": {}}))
    assert null_problems("p", pred) == [
        "p: prediction.id is number locally, ['string'] in the recordings"
    ]
    schema = {"properties": {"name": {"type": "string"}, "x": {"nullable": True}}}
    assert spec_null_problems("d", {"name": None, "x": None}, schema) == [
        "d: $.name is null locally, not nullable in the spec"
    ]
