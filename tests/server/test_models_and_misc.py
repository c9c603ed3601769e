"""Models, versions, search, readme, examples, account, hardware, secret, auth and errors."""

from __future__ import annotations

import httpx

from replicate.local.demo_models import HELLO_WORLD_VERSIONS
from replicate.local.registry import CALLABLE_COG_VERSION
from replicate.local.server import LocalServer

from .conftest import AUTH
from .helpers import unique

MODEL_KEYS = {
    "url",
    "owner",
    "name",
    "description",
    "visibility",
    "github_url",
    "paper_url",
    "license_url",
    "run_count",
    "cover_image_url",
    "weights_url",
    "default_example",
    "latest_version",
    "is_official",
    "created_at",
}


def test_model_get_shape(http: httpx.Client) -> None:
    r = http.get("/v1/models/replicate/hello-world")
    assert r.status_code == 200
    m = r.json()
    assert set(m) == MODEL_KEYS
    assert m["is_official"] is True and m["visibility"] == "public"
    assert m["latest_version"]["id"] == HELLO_WORLD_VERSIONS[1]
    assert set(m["latest_version"]) == {"id", "created_at", "cog_version", "openapi_schema"}
    schema = m["latest_version"]["openapi_schema"]
    assert schema["openapi"] == "3.0.2" and schema["info"] == {"title": "Cog", "version": "0.1.0"}
    comps = schema["components"]["schemas"]
    assert {
        "Input",
        "Output",
        "Status",
        "WebhookEvent",
        "PredictionRequest",
        "PredictionResponse",
        "ValidationError",
        "HTTPValidationError",
    } <= set(comps)
    assert comps["Input"]["required"] == ["text"]
    assert comps["Input"]["properties"]["text"]["description"] == "Text to prefix with 'hello '"
    assert comps["Output"]["type"] == "string"
    ex = m["default_example"]
    assert ex["status"] == "succeeded" and ex["output"] == "hello world"
    assert http.get("/v1/models/nobody/nothing").status_code == 404


def test_stream_model_output_schema(http: httpx.Client) -> None:
    v = http.get("/v1/models/local-demo/stream-text").json()["latest_version"]
    out = v["openapi_schema"]["components"]["schemas"]["Output"]
    assert out == {
        "type": "array",
        "items": {"type": "string"},
        "x-cog-array-type": "iterator",
        "x-cog-array-display": "concatenate",
        "title": "Output",
    }
    mf = http.get("/v1/models/local-demo/make-file").json()["latest_version"]["openapi_schema"][
        "components"
    ]
    assert mf["schemas"]["Output"] == {"type": "string", "format": "uri", "title": "Output"}
    assert mf["schemas"]["format"]["enum"] == ["png", "txt"]
    assert mf["schemas"]["Input"]["properties"]["format"]["allOf"] == [
        {"$ref": "#/components/schemas/format"}
    ]
    size = mf["schemas"]["Input"]["properties"]["size"]
    assert (size["minimum"], size["maximum"], size["default"], size["type"]) == (
        1,
        512,
        64,
        "integer",
    )


def test_versions(http: httpx.Client) -> None:
    r = http.get("/v1/models/replicate/hello-world/versions")
    assert r.status_code == 200
    page = r.json()
    assert [v["id"] for v in page["results"]] == [HELLO_WORLD_VERSIONS[1], HELLO_WORLD_VERSIONS[0]]
    assert page["next"] is None and page["previous"] is None
    v = http.get(f"/v1/models/replicate/hello-world/versions/{HELLO_WORLD_VERSIONS[0]}")
    assert (
        v.status_code == 200
        and v.json()["id"] == HELLO_WORLD_VERSIONS[0]
        # Never null: official clients reject it (the real API always sends a string).
        and v.json()["cog_version"] == CALLABLE_COG_VERSION
    )
    assert http.get(f"/v1/models/replicate/hello-world/versions/{'0' * 64}").status_code == 404


def test_models_list_and_search(http: httpx.Client) -> None:
    page = http.get("/v1/models").json()
    assert set(page) == {"next", "previous", "results"}
    names = [f"{m['owner']}/{m['name']}" for m in page["results"]]
    assert "replicate/hello-world" in names
    assert len(page["results"]) <= 25
    r = http.request("QUERY", "/v1/models", content="hello", headers={"content-type": "text/plain"})
    assert r.status_code == 200
    found = [f"{m['owner']}/{m['name']}" for m in r.json()["results"]]
    assert "replicate/hello-world" in found and "local-demo/sleep" not in found
    assert set(r.json()["results"][0]) == MODEL_KEYS - {"is_official", "weights_url"}
    asc = http.get("/v1/models", params={"sort_by": "model_created_at", "sort_direction": "asc"})
    assert asc.status_code == 200
    assert http.get("/v1/models", params={"sort_by": "nope"}).status_code == 422


def test_model_create_update_delete(http: httpx.Client) -> None:
    name = unique("x").split("/")[1]
    body = {
        "owner": "local",
        "name": name,
        "visibility": "private",
        "hardware": "cpu",
        "description": "An example model",
    }
    r = http.post("/v1/models", json=body)
    assert r.status_code == 201
    m = r.json()
    assert m["latest_version"] is None and m["run_count"] == 0 and m["default_example"] is None
    assert m["description"] == "An example model" and m["visibility"] == "private"
    assert http.post("/v1/models", json=body).status_code == 409
    assert http.post("/v1/models", json={**body, "owner": "someone-else"}).status_code == 403
    bad = http.post("/v1/models", json={"owner": "local"})
    assert bad.status_code == 422
    assert (
        bad.json()["detail"]
        == "- name is required\n- visibility is required\n- hardware is required"
    )
    u = http.patch(f"/v1/models/local/{name}", json={"description": "new", "readme": "# Hi"})
    assert u.status_code == 200 and u.json()["description"] == "new"
    rd = http.get(f"/v1/models/local/{name}/readme")
    assert (
        rd.status_code == 200
        and rd.text == "# Hi"
        and rd.headers["content-type"].startswith("text/plain")
    )
    assert http.patch(f"/v1/models/local/{name}", json={"owner": "x"}).status_code == 422
    d = http.delete(f"/v1/models/local/{name}")
    assert d.status_code == 204
    assert http.get(f"/v1/models/local/{name}").status_code == 404


def test_readme_and_examples(http: httpx.Client) -> None:
    r = http.get("/v1/models/replicate/hello-world/readme")
    assert r.status_code == 200 and "hello" in r.text
    assert http.get("/v1/models/local-demo/fail/readme").status_code == 404
    ex = http.get("/v1/models/replicate/hello-world/examples").json()
    assert len(ex["results"]) == 1 and ex["results"][0]["output"] == "hello world"


def test_registered_callable_version_delete(server: LocalServer, http: httpx.Client) -> None:
    name = unique()

    def echo(text: str) -> str:
        return text

    vid = server.register(name, echo)
    assert (
        http.post(
            f"/v1/models/{name}/predictions",
            json={"input": {"text": "x"}},
            headers={"Prefer": "wait"},
        ).json()["output"]
        == "x"
    )
    assert http.get(f"/v1/models/{name}").json()["run_count"] == 1
    r = http.delete(f"/v1/models/{name}/versions/{vid}")
    assert r.status_code == 202
    assert http.get(f"/v1/models/{name}/versions/{vid}").status_code == 404
    assert (
        http.delete(
            f"/v1/models/replicate/hello-world/versions/{HELLO_WORLD_VERSIONS[0]}"
        ).status_code
        == 403
    )


def test_account_hardware_secret(http: httpx.Client) -> None:
    assert http.get("/v1/account").json() == {
        "type": "user",
        "username": "local",
        "name": "Local User",
    }
    hw = http.get("/v1/hardware")
    assert hw.json() == [
        {"sku": "cpu", "name": "CPU"},
        {"sku": "gpu-t4", "name": "Nvidia T4 GPU"},
        {"sku": "gpu-a40-small", "name": "Nvidia A40 GPU"},
        {"sku": "gpu-a40-large", "name": "Nvidia A40 (Large) GPU"},
    ]
    key = http.get("/v1/webhooks/default/secret").json()["key"]
    assert key.startswith("whsec_")


def test_auth_401_exact(server: LocalServer) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        for path in ("/v1/account", "/v1/predictions", "/v1/models/replicate/hello-world"):
            r = c.get(path)
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json() == {
                "title": "Unauthenticated",
                "detail": "You did not pass a valid authentication token",
                "status": 401,
            }
        assert c.get("/v1/account", headers={"Authorization": "Token abc"}).status_code == 200
        assert c.get("/v1/account", headers={"Authorization": "Basic abc"}).status_code == 401
        assert c.get("/_local/health").status_code == 200


def test_fixed_token_mode() -> None:
    with LocalServer(token="secret-1") as s, httpx.Client(base_url=s.base_url) as c:
        assert s.api_token == "secret-1"
        assert c.get("/v1/account", headers={"Authorization": "Bearer secret-1"}).status_code == 200
        assert c.get("/v1/account", headers={"Authorization": "Bearer other"}).status_code == 401


def test_unknown_path_and_wrong_method(http: httpx.Client) -> None:
    r = http.get("/v1/nope")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = http.delete("/v1/account")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]
    assert r.headers["content-type"] == "application/problem+json"


def test_test_controls_off_by_default(server: LocalServer) -> None:
    with LocalServer() as s, httpx.Client(base_url=s.base_url) as c:
        assert c.get("/_local/faults").status_code == 404
        assert c.get("/_local/health").status_code == 200


def test_injected_429_and_request_log(fresh: LocalServer) -> None:
    with httpx.Client(base_url=fresh.base_url, headers=AUTH) as c:
        c.post(
            "/_local/faults",
            json={"path": "/v1/account", "status": 429, "retry_after": 1, "times": 2},
        )
        statuses = [c.get("/v1/account") for _ in range(3)]
        assert [r.status_code for r in statuses] == [429, 429, 200]
        assert statuses[0].headers["retry-after"] == "1"
        assert statuses[0].json() == {
            "detail": "Request was throttled. Your rate limit resets in ~1s.",
            "status": 429,
            "retry_after": 1,
        }
        log = [e for e in c.get("/_local/requests").json() if e["path"] == "/v1/account"]
        assert [e["status"] for e in log] == [429, 429, 200]
        c.post(
            "/_local/faults",
            json={"path": "/v1/predictions", "method": "POST", "status": 503, "times": 1},
        )
        r = c.post(
            "/v1/predictions", json={"version": "replicate/hello-world", "input": {"text": "x"}}
        )
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        assert c.get("/_local/faults").json() == []


def test_model_update_rules(server: LocalServer, http: httpx.Client) -> None:
    assert (
        http.patch("/v1/models/replicate/hello-world", json={"description": "hijack"}).status_code
        == 403
    )
    name = unique()

    def f(text: str) -> str:
        return text

    server.register(name, f)
    bad = http.patch(f"/v1/models/{name}", json={"github_url": "not a url"})
    assert (
        bad.status_code == 422
        and bad.json()["detail"] == "- github_url: Does not match format 'uri'"
    )
    ok = http.patch(
        f"/v1/models/{name}",
        json={"github_url": "https://github.com/x/y", "weights_url": "https://w.example/x"},
    )
    assert ok.status_code == 200
    assert (
        ok.json()["github_url"] == "https://github.com/x/y"
        and ok.json()["weights_url"] == "https://w.example/x"
    )


def test_streaming_example_has_stream_url(http: httpx.Client) -> None:
    ex = http.get("/v1/models/local-demo/stream-text").json()["default_example"]
    assert ex["urls"]["stream"].startswith(str(http.base_url).rstrip("/") + "/v1/streams/")


def test_model_create_wrong_types_are_422(http: httpx.Client) -> None:
    base = {"owner": "local", "name": "typed", "visibility": "private", "hardware": "cpu"}
    for field, value in (("hardware", {}), ("description", {}), ("name", ["x"]), ("owner", 1)):
        r = http.post("/v1/models", json={**base, field: value})
        assert r.status_code == 422, (field, r.text)
        assert f"- {field}: Invalid type. Expected: string, given: " in r.json()["detail"]
