"""The layer in front of every route (``replicate.local.front``) and the indexed router.

What the layer adds to every answer must not depend on which route (or no route) answered:
``ratelimit-*`` headers on every ``/v1`` answer (404/405 included), a request log entry for
every request (a faulted one included), problem+json 404/405 bodies; and the router must
pick the same route Starlette's full scan would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from replicate.local.server import LocalServer

from .conftest import AUTH

NOT_FOUND = {"detail": "The requested resource could not be found.", "status": 404}


@pytest.fixture
def logged(server: LocalServer) -> Iterator[LocalServer]:
    """The session server with an empty request log and no faults, restored afterwards."""
    server.clear_requests()
    server.faults.clear()
    yield server
    server.faults.clear()


def _entries(server: LocalServer, path: str) -> list[dict[str, Any]]:
    return [e for e in server.requests() if e["path"] == path]


@pytest.mark.parametrize(
    ("method", "path", "remaining"),
    [
        ("GET", "/v1/nope", "2999"),
        ("POST", "/v1/nope/predictions", "599"),
        ("GET", "/v1/predictions/a/b/c/d", "2999"),
    ],
)
def test_a_v1_404_is_a_problem_with_ratelimit_headers(
    http: httpx.Client, method: str, path: str, remaining: str
) -> None:
    r = http.request(method, path, json={} if method == "POST" else None)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == NOT_FOUND
    assert r.headers["ratelimit-remaining"] == remaining
    assert r.headers["ratelimit-reset"] == "1"


def test_a_v1_405_names_the_allowed_methods_and_has_ratelimit_headers(http: httpx.Client) -> None:
    r = http.delete("/v1/account")
    assert r.status_code == 405
    assert r.json() == {"detail": "Method not allowed", "status": 405}
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert r.headers["ratelimit-remaining"] == "2999"


def test_answers_outside_v1_have_no_ratelimit_headers(http: httpx.Client) -> None:
    for path in ("/_local/health", "/nope", "/web/nope/nope"):
        r = http.get(path)
        assert "ratelimit-remaining" not in r.headers, path
    assert http.get("/nope").json() == NOT_FOUND


def test_head_and_trailing_slashes_behave_as_before(http: httpx.Client) -> None:
    assert http.head("/v1/account").status_code == 200
    r = http.get("/v1/account/", follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"].endswith("/v1/account")


def test_every_route_shape_reaches_its_handler(http: httpx.Client) -> None:
    """One request per group of the router's index: literal and parameter segments."""
    assert http.get("/v1/account").json()["type"] == "user"
    assert http.get("/v1/models/replicate/hello-world").json()["name"] == "hello-world"
    assert http.get("/v1/models/replicate/hello-world/versions").status_code == 200
    assert http.get("/v1/predictions/nope").json()["status"] == 404
    assert http.get("/v1/collections").status_code == 200  # a catalogue route, added later
    assert http.get("/v1/deployments/nobody/nothing").status_code == 404
    assert http.get("/web/replicate/hello-world").status_code == 200
    assert http.get("/").status_code == 200


def test_a_request_answered_by_a_fault_is_in_the_request_log(
    logged: LocalServer, http: httpx.Client
) -> None:
    fault = logged.add_fault(path="/v1/hardware", status=503, times=1)
    r = http.get("/v1/hardware", headers={"Prefer": "wait"})
    assert r.status_code == 503
    assert r.headers["ratelimit-remaining"] == "2999"
    (entry,) = _entries(logged, "/v1/hardware")
    assert entry["status"] == 503
    assert entry["fault"] == fault.id
    assert entry["headers"] == {"prefer": "wait"}
    # (``duration`` is filled in once the request is over, maybe after the client has read it.)


def test_the_log_keeps_404s_and_413s_but_not_the_controls(
    logged: LocalServer, http: httpx.Client
) -> None:
    http.get("/v1/nope")
    http.get("/_local/health")
    big = b"x" * (logged.config.max_body_size + 1)
    r = http.post("/v1/predictions", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.headers["ratelimit-remaining"] == "599"
    assert [e["status"] for e in _entries(logged, "/v1/nope")] == [404]
    assert [e["status"] for e in _entries(logged, "/v1/predictions")] == [413]
    assert _entries(logged, "/_local/health") == []


def test_an_unreadable_content_length_is_counted_like_a_chunked_body() -> None:
    """A body whose length is not declared is counted as it streams: 413 past the limit."""
    with LocalServer(max_body_size=1000) as s, httpx.Client(base_url=s.base_url) as c:

        def chunks() -> Iterator[bytes]:
            yield b'{"input": {"text": "'
            yield b"x" * 2000
            yield b'"}}'

        r = c.post("/v1/models/replicate/hello-world/predictions", content=chunks(), headers=AUTH)
        assert r.status_code == 413
        assert r.json()["title"] == "Content Too Large"
        ok = c.post(
            "/v1/models/replicate/hello-world/predictions",
            json={"input": {"text": "a"}},
            headers={**AUTH, "Prefer": "wait"},
        )
        assert ok.status_code == 201, ok.text


def _first_match(routes: list[Any], scope: dict[str, Any]) -> Any:
    """The route Starlette's router hands ``scope`` to (first full match, else first partial)."""
    from starlette.routing import Match

    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def test_the_router_index_picks_what_the_full_scan_picks(server: LocalServer) -> None:
    """For paths made from every route's template (and variants that must not match), the
    routes of the index's group give the same answer as all routes in order, or the group
    is None / finds nothing and the request goes to the full scan."""
    from starlette.routing import Match

    from replicate.local.app import build_app
    from replicate.local.routing import Router, _match_segments

    assert server.core is not None
    app = build_app(server.core)
    router = app.router
    assert isinstance(router, Router)
    routes = list(router.routes)
    paths = {"/", "", "*", "/v1", "/v1/", "//", "/v1//x", "/v1/account\n", "/web/p/x/"}
    for route in routes:
        template = route.path  # type: ignore[attr-defined]
        for value in ("x", "predictions", "", "a.b", "x\n"):
            path = template
            while "{" in path:
                start, end = path.index("{"), path.index("}")
                path = path[:start] + value + path[end + 1 :]
            paths.update({path, path + "/", path + "/extra", path.rstrip("/") or "/"})
    assert len(paths) > 200
    for path in sorted(paths):
        for method in ("GET", "POST", "DELETE", "HEAD", "QUERY"):
            scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            expected = _first_match(routes, scope)
            group = router.group(path)
            if group is None:
                continue  # full scan
            got = _first_match(group, scope)
            assert got is expected or got is None, (method, path, got, expected)
            if expected is not None and got is None:
                pytest.fail(f"{method} {path!r}: the group misses {expected.path}")
            # The router compares segments instead of running each route's regex: the same
            # routes match, with the same parameters.
            for route in group:
                match, child = route.matches(scope)
                params = _match_segments(router._segments[id(route)], path.split("/"))
                if match is Match.NONE:
                    assert params is None, (path, route.path)  # type: ignore[attr-defined]
                else:
                    assert params == child["path_params"], (path, route.path)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- fast paths


def test_origin_follows_each_requests_host(server: LocalServer) -> None:
    """``origin`` remembers origins per Host (and scheme, server, root path)."""
    with httpx.Client(base_url=server.base_url, headers=AUTH) as c:
        for host in ("a.example:8000", "b.example", "a.example:8000", "[::1]:9"):
            r = c.get("/v1/models/replicate/hello-world/versions", headers={"Host": host})
            assert r.status_code == 200
            urls = [v for v in (r.json()["next"], r.json()["previous"]) if v]
            for url in urls:
                assert url.startswith(f"http://{host}/"), (host, url)
            p = c.post(
                "/v1/models/replicate/hello-world/predictions",
                json={"input": {"text": "h"}},
                headers={"Host": host, "Prefer": "wait"},
            )
            assert p.json()["urls"]["get"].startswith(f"http://{host}/v1/predictions/")


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (({"a": 1},), {}),
        (({"a": [1, "é", None]}, 201, {"Preference-Applied": "wait"}), {}),
        (({"a": 1}, 202, {"Location": "http://x/y", "X-Two": "z"}), {}),
        (({"a": 1}, 200, {"Content-Type": "text/plain"}), {}),
        (({}, 204), {}),
        (({"a": 1},), {"media_type": "application/problem+json"}),
    ],
)
def test_json_response_is_what_a_starlette_response_would_be(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    from starlette.responses import Response

    from replicate.local.gate import strict_dumps
    from replicate.local.routes_base import json_response

    got = json_response(*args, **kwargs)
    value, status, headers = (*args, 200, None)[:3] if len(args) == 1 else (*args, None)[:3]
    want = Response(
        strict_dumps(value),
        status_code=status,
        headers=headers,
        media_type=kwargs.get("media_type", "application/json"),
    )
    assert (got.status_code, got.body, got.raw_headers) == (
        want.status_code,
        want.body,
        want.raw_headers,
    )


def test_iso_is_what_datetime_formats() -> None:
    import math
    import random
    from datetime import datetime, timezone

    from replicate.local.util import iso

    def reference(ts: float) -> str | None:
        try:
            dt = datetime.fromtimestamp(ts, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    rng = random.Random(14)
    values = [0.0, -0.5, -1e-7, 0.9999995, 1.0000005, 1733450000.0000015, 253402300799.9999996]
    values += [253402300800.0, -62135596801.0, math.nan, math.inf, -math.inf, 1e20]
    values += [round(rng.uniform(0, 2e9), 6) for _ in range(2000)]
    values += [rng.uniform(-7e10, 2.6e11) for _ in range(2000)]
    values += [int(rng.uniform(0, 2e9)) + rng.choice([5e-7, 1.5e-6, 0.9999995]) for _ in range(500)]
    for ts in values:
        assert iso(ts) == reference(ts), ts
    assert iso(None) is None


def test_the_depth_check_is_kept_at_the_limit() -> None:
    """Bodies with fewer brackets than the limit skip the walk; at the limit it runs."""
    from replicate.local.errors import ApiError
    from replicate.local.gate import MAX_JSON_DEPTH, parse_json

    for depth in (MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH):
        assert parse_json(b"[" * depth + b"]" * depth) is not None
    with pytest.raises(ApiError):
        parse_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(ApiError):  # a lone surrogate in a shallow body is still found
        parse_json(b'{"a": "\\udc00"}')


# ---------------------------------------------------------------------------- errors


def _front(app: Any, *, test_controls: bool = True) -> tuple[Any, Any]:
    """``Front`` over ``app`` with its own faults and request log (``(front, log)``)."""
    from types import SimpleNamespace

    from replicate.local.controls import Faults, RequestLog
    from replicate.local.front import Front

    log = RequestLog()
    core = SimpleNamespace(config=SimpleNamespace(test_controls=test_controls))
    front = Front(app, core, Faults(), log, lambda method, path: (100, None))  # type: ignore[arg-type]
    return front, log


def _call(front: Any, path: str = "/v1/x") -> list[dict[str, Any]]:
    import asyncio

    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(front(scope, receive, send))
    return sent


def _reply_then(error: bool, *, complete: bool) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": not complete})
        if error:
            raise RuntimeError("after the reply")

    return app


def test_an_error_before_the_reply_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    front, log = _front(app)
    sent = _call(front)
    start, body = sent
    assert start["status"] == 500
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"ratelimit-remaining"] == b"2999"
    rid = headers[b"x-request-id"].decode()
    assert b'"Internal server error"' in body["body"]
    assert [e["status"] for e in log.list()] == [500]
    assert any(rid in r.getMessage() and r.exc_info for r in caplog.records)


def test_an_error_after_a_complete_reply_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    front, log = _front(_reply_then(True, complete=True))
    sent = _call(front)
    assert [m.get("status") for m in sent] == [200, None]
    assert [e["status"] for e in log.list()] == [200]
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


def test_an_error_in_the_middle_of_a_reply_is_passed_on() -> None:
    front, _ = _front(_reply_then(True, complete=False))
    with pytest.raises(RuntimeError, match="after the reply"):
        _call(front)


def test_no_log_entry_without_the_test_controls_nor_for_the_controls() -> None:
    front, log = _front(_reply_then(False, complete=True), test_controls=False)
    _call(front)
    assert log.list() == []
    front, log = _front(_reply_then(False, complete=True))
    _call(front, "/_local/health")
    sent = _call(front, "/web/x")
    assert b"ratelimit-remaining" not in dict(sent[0]["headers"])
    assert [e["path"] for e in log.list()] == ["/web/x"]


def test_a_path_matched_lately_goes_to_the_same_route_until_the_routes_change() -> None:
    """The router remembers which route a method and path matched (``Router._hits``)."""
    import asyncio

    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from replicate.local.routing import Router

    def answer(tag: str):  # type: ignore[no-untyped-def]
        async def endpoint(request):  # type: ignore[no-untyped-def]
            return PlainTextResponse(f"{tag}:{request.path_params}")

        return endpoint

    router = Router([Route("/v1/things/{tid}", answer("get"), methods=["GET"])])

    def call(method: str, path: str) -> tuple[int, str]:
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "root_path": "",
                 "query_string": b"", "headers": []}  # fmt: skip
        asyncio.run(router(scope, receive, send))
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode()

    for tid in ("a", "a", "b", "a"):
        assert call("GET", f"/v1/things/{tid}") == (200, f"get:{{'tid': '{tid}'}}")
    assert set(router._hits) == {("GET", "/v1/things/a"), ("GET", "/v1/things/b")}
    long = "x" * 300  # a client's long paths are answered but not remembered
    assert call("GET", f"/v1/things/{long}") == (200, f"get:{{'tid': '{long}'}}")
    assert len(router._hits) == 2
    assert call("POST", "/v1/things/a")[0] == 405  # another method: matched anew
    # A route added in front of the old one wins from then on: the remembered paths are not.
    router.routes.insert(0, Route("/v1/things/{tid}", answer("new"), methods=["GET"]))
    assert call("GET", "/v1/things/a") == (200, "new:{'tid': 'a'}")
    assert set(router._hits) == {("GET", "/v1/things/a")}
