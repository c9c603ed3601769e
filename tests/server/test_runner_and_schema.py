"""Callables: schemas from signatures, log capture, cancel semantics, queue limits, outbox durability, reset."""

from __future__ import annotations

import enum
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx

from replicate.local.schema import (
    ConcatenateIterator,
    Input,
    build_input_schema,
    build_output_schema,
    validate_input,
)
from replicate.local.server import LocalServer

from .conftest import AUTH
from .helpers import Receiver, register_gate, unique, wait_status, wait_until


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _sig(
    name: str,
    n: int = Input(default=2, ge=1, le=5, description="count"),
    ratio: float = 0.5,
    flag: bool = False,
    tags: list[str] | None = None,
    mode: Literal["a", "b"] = "a",
    color: Color = Color.RED,
    image: Path | None = None,
    code: str = Input(default="x", min_length=1, max_length=3, regex="^[a-z]+$"),
) -> Iterator[str]:
    yield name


def test_input_schema_from_signature() -> None:
    schema, enums = build_input_schema(_sig)
    props = schema["properties"]
    assert schema["required"] == ["name"]
    assert [p["x-order"] for p in props.values()] == list(range(9))
    assert props["name"] == {"type": "string", "title": "Name", "x-order": 0}
    assert props["n"] == {
        "type": "integer",
        "title": "N",
        "default": 2,
        "x-order": 1,
        "description": "count",
        "minimum": 1,
        "maximum": 5,
    }
    assert props["ratio"]["type"] == "number" and props["flag"]["type"] == "boolean"
    assert props["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "title": "Tags",
        "x-order": 4,
    }
    assert props["mode"]["allOf"] == [{"$ref": "#/components/schemas/mode"}] and enums["mode"][
        "enum"
    ] == ["a", "b"]
    assert props["color"]["default"] == "red" and enums["color"]["enum"] == ["red", "blue"]
    assert props["image"]["format"] == "uri"
    assert (props["code"]["minLength"], props["code"]["maxLength"], props["code"]["pattern"]) == (
        1,
        3,
        "^[a-z]+$",
    )
    assert build_output_schema(_sig) == {
        "type": "array",
        "items": {"type": "string"},
        "x-cog-array-type": "iterator",
        "title": "Output",
    }

    def tokens() -> ConcatenateIterator[str]:  # type: ignore[empty-body]
        ...

    assert build_output_schema(tokens)["x-cog-array-display"] == "concatenate"

    def file_out() -> Path:  # type: ignore[empty-body]
        ...

    assert build_output_schema(file_out) == {"type": "string", "format": "uri", "title": "Output"}


def test_validate_lengths_and_patterns() -> None:
    from replicate.local.schema import cog_openapi_document

    schema, enums = build_input_schema(_sig)
    doc = cog_openapi_document(schema, {}, enums)
    assert validate_input(doc, {"name": "x", "code": "abcd"}) == [
        {
            "type": "string_lte",
            "field": "input.code",
            "description": "String length must be less than or equal to 3",
        }
    ]
    assert validate_input(doc, {"name": "x", "code": "A"})[0]["type"] == "pattern"
    assert validate_input(doc, {"name": "x", "tags": ["a", 1]}) == [
        {
            "type": "invalid_type",
            "field": "input.tags.1",
            "description": "Invalid type. Expected: string, given: integer",
        }
    ]
    assert validate_input(doc, {"name": "x", "ratio": 1}) == []
    assert validate_input(doc, {"name": "x", "unknown": 1}) == []
    assert validate_input(doc, {"name": "x", "color": "green"})[0]["type"] == "enum"


def test_logs_are_captured_per_prediction(server: LocalServer, http: httpx.Client) -> None:
    barrier = threading.Barrier(2, timeout=10)

    def chatty(text: str) -> str:
        print(f"out {text}")
        barrier.wait()
        print(f"err {text}", file=sys.stderr)
        logging.getLogger("user.model").warning("warn %s", text)
        return text

    name = unique()
    server.register(name, chatty, concurrency=2)
    a = http.post(f"/v1/models/{name}/predictions", json={"input": {"text": "A"}}).json()
    b = http.post(f"/v1/models/{name}/predictions", json={"input": {"text": "B"}}).json()
    pa = wait_status(http, a["id"], {"succeeded"})
    pb = wait_status(http, b["id"], {"succeeded"})
    assert pa["logs"] == "out A\nerr A\nwarn A\n"
    assert pb["logs"] == "out B\nerr B\nwarn B\n"


def test_non_cooperative_callable_is_canceled_at_once(
    server: LocalServer, http: httpx.Client
) -> None:
    release = threading.Event()
    started = threading.Event()

    def stubborn(text: str) -> str:
        started.set()
        release.wait(10)
        return "late result"

    name = unique()
    server.register(name, stubborn)
    p = http.post(f"/v1/models/{name}/predictions", json={"input": {"text": "x"}}).json()
    assert started.wait(10)
    c = http.post(f"/v1/predictions/{p['id']}/cancel").json()
    assert c["status"] == "canceled" and c["output"] is None
    release.set()
    nxt = http.post(
        f"/v1/models/{name}/predictions", json={"input": {"text": "y"}}, headers={"Prefer": "wait"}
    ).json()
    assert nxt["output"] == "late result"
    assert (
        http.get(f"/v1/predictions/{p['id']}").json()["output"] is None
    )  # the late result was discarded


def test_queue_depth_limit_gives_429() -> None:
    with LocalServer(max_queue_depth=2) as s, httpx.Client(base_url=s.base_url, headers=AUTH) as c:
        name, gate = register_gate(s)
        codes = []
        for i in range(4):
            codes.append(
                c.post(
                    f"/v1/models/{name}/predictions", json={"input": {"text": str(i)}}
                ).status_code
            )
            if i == 0:
                gate.wait_started(1)
        assert codes == [201, 201, 201, 429]
        gate.release()


def test_webhook_outbox_survives_restart(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.statuses = [500]
    db = str(tmp_path / "w.sqlite3")
    try:
        s = LocalServer(db=db, webhook_backoff=(30.0,)).start()
        with httpx.Client(base_url=s.base_url, headers=AUTH) as c:
            p = c.post(
                "/v1/predictions",
                json={
                    "version": "replicate/hello-world",
                    "input": {"text": "w"},
                    "webhook": receiver.url,
                    "webhook_events_filter": ["completed"],
                },
            ).json()
            receiver.wait_for(lambda rs: len(rs) == 1)
        s.crash()
        # restarting with a short backoff delivers the pending retry
        with LocalServer(db=db, webhook_backoff=(0.0,)) as s2:
            s2.core.store.execute(
                "UPDATE webhook_outbox SET next_attempt_at = 0 WHERE state = 'pending'"
            )  # type: ignore[union-attr]
            s2.core.webhooks.kick()  # type: ignore[union-attr]
            reqs = receiver.wait_for(lambda rs: len(rs) == 2)
            assert reqs[1]["status"] == 200 and reqs[1]["json"]["id"] == p["id"]
            assert reqs[0]["headers"]["webhook-id"] == reqs[1]["headers"]["webhook-id"]
    finally:
        receiver.close()


def test_reset_control() -> None:
    with LocalServer(test_controls=True) as s, httpx.Client(base_url=s.base_url, headers=AUTH) as c:
        c.post(
            "/v1/predictions",
            json={"version": "replicate/hello-world", "input": {"text": "x"}},
            headers={"Prefer": "wait"},
        )
        c.post("/v1/files", files={"content": ("a.txt", b"a", "text/plain")})
        c.post(
            "/v1/models",
            json={"owner": "local", "name": "tmp", "visibility": "private", "hardware": "cpu"},
        )
        secret = c.get("/v1/webhooks/default/secret").json()["key"]
        assert c.post("/_local/reset").status_code == 204
        assert c.get("/v1/predictions").json()["results"] == []
        assert c.get("/v1/files").json()["results"] == []
        assert c.get("/v1/models/local/tmp").status_code == 404
        assert c.get("/v1/models/replicate/hello-world").status_code == 200
        assert c.get("/v1/webhooks/default/secret").json()["key"] == secret
        assert c.post("/_local/reset", json={"secrets": True}).status_code == 204
        assert c.get("/v1/webhooks/default/secret").json()["key"] != secret
        assert wait_until(lambda: c.get("/_local/health").status_code == 200)


def test_register_with_a_ready_schema(server: LocalServer, http: httpx.Client) -> None:
    from replicate.local.schema import cog_openapi_document

    doc = cog_openapi_document(
        {
            "type": "object",
            "title": "Input",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "title": "Text", "x-order": 0},
                "n": {"type": "integer", "title": "N", "default": 3, "x-order": 1},
            },
        },
        {"type": "string", "title": "Output"},
        {},
    )

    def anything(cancel_event: threading.Event | None = None, **inputs: object) -> str:
        return f"{inputs['text']}x{inputs['n']}"

    name = unique()
    vid = server.register(
        name, anything, openapi_schema=doc, cog_version="0.23.0", version_id="ab" * 32
    )
    assert vid == "ab" * 32
    v = http.get(f"/v1/models/{name}/versions/{vid}").json()
    assert v["cog_version"] == "0.23.0" and v["openapi_schema"] == doc
    r = http.post(
        f"/v1/models/{name}/predictions", json={"input": {"text": "a"}}, headers={"Prefer": "wait"}
    )
    assert r.json()["output"] == "ax3"
    assert http.post(f"/v1/models/{name}/predictions", json={"input": {}}).status_code == 422
