"""The catalogue endpoints: deployments, trainings, collections, search, account, readme and examples
(docs/local-server.md, "Endpoints").

Deployments, trainings, collections and search over real sockets, with raw httpx and with the
library's client (sync and async).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import replicate
from replicate.exceptions import ReplicateError
from replicate.local.catalogue import register_trainer
from replicate.local.demo_models import HELLO_WORLD_VERSIONS
from replicate.local.server import LocalServer
from server.helpers import Receiver, wait_until

AUTH = {"Authorization": "Bearer test-token"}
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
OLD_HELLO, NEW_HELLO = HELLO_WORLD_VERSIONS
_names = itertools.count()


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True) as s:
        yield s


@pytest.fixture(scope="module")
def http(srv: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.base_url, headers=AUTH, timeout=30) as c:
        yield c


@pytest.fixture
def client(srv: LocalServer) -> replicate.Client:
    return replicate.Client(api_token=srv.api_token, base_url=srv.base_url, poll_interval=0.02)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def call(mode: str, obj: Any, method: str, /, *args: Any, **kwargs: Any) -> Any:
    """``obj.method(...)`` in sync mode, ``await obj.async_method(...)`` in async mode."""
    if mode == "sync":
        return getattr(obj, method)(*args, **kwargs)
    return await getattr(obj, f"async_{method}")(*args, **kwargs)


def fresh_name(prefix: str = "m") -> str:
    return f"{prefix}{next(_names)}"


def create_model(http: httpx.Client, name: str, visibility: str = "private") -> None:
    r = http.post(
        "/v1/models",
        json={"owner": "local", "name": name, "visibility": visibility, "hardware": "cpu"},
    )
    assert r.status_code == 201, r.text


def latest_version(http: httpx.Client, model: str) -> str:
    return str(http.get(f"/v1/models/{model}").json()["latest_version"]["id"])


def wait_training(http: httpx.Client, tid: str) -> dict[str, Any]:
    return wait_until(  # type: ignore[no-any-return]
        lambda: (t := http.get(f"/v1/trainings/{tid}").json())["status"] in TERMINAL and t
    )


def deployment_body(name: str, **over: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "model": "replicate/hello-world",
        "version": NEW_HELLO,
        "hardware": "cpu",
        "min_instances": 0,
        "max_instances": 1,
    }
    body.update(over)
    return body


def assert_problem(r: httpx.Response, status: int, detail: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    if detail is not None:
        assert body["detail"] == detail
    return body  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- deployments


def test_deployment_scenario_raw(http: httpx.Client) -> None:
    """Deployments end to end: create (200) → get → predict (201, deployment set) → update (release 2) → delete (204)."""
    name = fresh_name("dep")
    r = http.post("/v1/deployments", json=deployment_body(name))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    d = r.json()
    assert set(d) == {"owner", "name", "current_release"}
    assert (d["owner"], d["name"]) == ("local", name)
    rel = d["current_release"]
    assert set(rel) == {"number", "model", "version", "created_at", "created_by", "configuration"}
    assert rel["number"] == 1 and rel["model"] == "replicate/hello-world"
    assert rel["version"] == NEW_HELLO and rel["created_at"].endswith("Z")
    assert rel["created_by"] == {"type": "user", "username": "local", "name": "Local User"}
    assert rel["configuration"] == {"hardware": "cpu", "min_instances": 0, "max_instances": 1}
    assert "ratelimit-remaining" in r.headers

    assert http.get(f"/v1/deployments/local/{name}").json() == d

    r = http.post(
        f"/v1/deployments/local/{name}/predictions",
        json={"input": {"text": "deployed"}},
        headers={"Prefer": "wait"},
    )
    assert r.status_code == 201 and r.headers["preference-applied"] == "wait"
    p = r.json()
    assert p["status"] == "succeeded" and p["output"] == "hello deployed"
    assert p["deployment"] == f"local/{name}" and p["version"] == NEW_HELLO
    assert http.get(f"/v1/predictions/{p['id']}").json()["deployment"] == f"local/{name}"

    r = http.patch(f"/v1/deployments/local/{name}", json={"version": OLD_HELLO, "max_instances": 3})
    assert r.status_code == 200
    rel2 = r.json()["current_release"]
    assert rel2["number"] == 2 and rel2["version"] == OLD_HELLO
    assert rel2["configuration"] == {"hardware": "cpu", "min_instances": 0, "max_instances": 3}
    r = http.patch(f"/v1/deployments/local/{name}", json={"hardware": "gpu-t4"})
    assert r.json()["current_release"]["number"] == 3
    assert r.json()["current_release"]["configuration"]["hardware"] == "gpu-t4"

    p2 = http.post(
        f"/v1/deployments/local/{name}/predictions",
        json={"input": {"text": "v1"}},
        headers={"Prefer": "wait"},
    ).json()
    assert p2["version"] == OLD_HELLO and p2["output"] == "hello v1"

    listed = http.get("/v1/deployments").json()
    assert listed["next"] is None and listed["previous"] is None
    assert next(x for x in listed["results"] if x["name"] == name)["current_release"]["number"] == 3

    r = http.delete(f"/v1/deployments/local/{name}")
    assert r.status_code == 204 and r.content == b""
    assert_problem(http.get(f"/v1/deployments/local/{name}"), 404)
    assert_problem(
        http.post(f"/v1/deployments/local/{name}/predictions", json={"input": {"text": "x"}}), 404
    )
    assert_problem(http.delete(f"/v1/deployments/local/{name}"), 404)
    # The finished prediction stays, and a new deployment of that name starts at release 1.
    assert http.get(f"/v1/predictions/{p['id']}").json()["deployment"] == f"local/{name}"
    again = http.post("/v1/deployments", json=deployment_body(name)).json()
    assert again["current_release"]["number"] == 1
    http.delete(f"/v1/deployments/local/{name}")


def test_deployment_create_validation(http: httpx.Client) -> None:
    r = http.post("/v1/deployments", json={"name": "x"})
    body = assert_problem(r, 422)
    assert body["title"] == "Input validation failed"
    for key in ("model", "version", "hardware", "min_instances", "max_instances"):
        assert f"- {key} is required" in body["detail"].splitlines()
    lines = assert_problem(
        http.post(
            "/v1/deployments",
            json=deployment_body(
                "Bad Name", hardware="gpu-h100", min_instances=6, max_instances=True, extra=1
            ),
        ),
        422,
    )["detail"].splitlines()
    assert not any("extra" in line for line in lines)  # unknown keys are ignored
    assert "- min_instances: Must be less than or equal to 5" in lines
    assert "- max_instances: Invalid type. Expected: integer, given: boolean" in lines
    assert any(
        line.startswith("- hardware: hardware must be one of the following") for line in lines
    )
    assert "- name: Does not match pattern '^[a-z0-9][a-z0-9._-]*$'" in lines
    assert_problem(http.post("/v1/deployments", json=deployment_body("neg", max_instances=21)), 422)
    bad_version = assert_problem(
        http.post("/v1/deployments", json=deployment_body("bv", version="0" * 64)), 422
    )
    assert bad_version["title"] == "Invalid version or not permitted"
    # A version of another model is not a version of this one.
    other = latest_version(http, "local-demo/sleep")
    assert_problem(http.post("/v1/deployments", json=deployment_body("ov", version=other)), 422)
    assert_problem(
        http.post("/v1/deployments", json=deployment_body("nm", model="nobody/nothing")), 404
    )
    assert_problem(http.post("/v1/deployments", content=b"{nope"), 400)
    assert_problem(http.post("/v1/deployments", json=[1]), 422)
    name = fresh_name("dup")
    assert http.post("/v1/deployments", json=deployment_body(name)).status_code == 200
    assert_problem(http.post("/v1/deployments", json=deployment_body(name)), 409)
    # Updates validate too, and a bad update creates no release.
    assert_problem(http.patch(f"/v1/deployments/local/{name}", json={"min_instances": -1}), 422)
    # Keys other than version/hardware/min/max are ignored: no change, no new release.
    r = http.patch(f"/v1/deployments/local/{name}", json={"name": "x"})
    assert r.status_code == 200 and r.json()["name"] == name
    assert_problem(http.patch(f"/v1/deployments/local/{name}", json={"version": other}), 422)
    assert_problem(http.patch("/v1/deployments/local/nope", json={"min_instances": 1}), 404)
    assert http.get(f"/v1/deployments/local/{name}").json()["current_release"]["number"] == 1
    # Another owner's namespace is not visible.
    assert_problem(http.get(f"/v1/deployments/someone/{name}"), 404)
    http.delete(f"/v1/deployments/local/{name}")


def test_deployment_auth_and_methods(srv: LocalServer) -> None:
    with httpx.Client(base_url=srv.base_url) as anon:
        r = anon.get("/v1/deployments")
        assert r.status_code == 401
        assert r.json() == {
            "title": "Unauthenticated",
            "detail": "You did not pass a valid authentication token",
            "status": 401,
        }
        assert anon.get("/v1/trainings").status_code == 401
        assert anon.get("/v1/collections").status_code == 401
        r = anon.put("/v1/deployments", headers=AUTH)
        assert r.status_code == 405 and "GET" in r.headers["allow"]


def test_deployment_prediction_wait_202_stream_and_cancel(http: httpx.Client) -> None:
    name = fresh_name("slow")
    sleep_v = latest_version(http, "local-demo/sleep")
    body = deployment_body(name, model="local-demo/sleep", version=sleep_v)
    assert http.post("/v1/deployments", json=body).status_code == 200
    r = http.post(
        f"/v1/deployments/local/{name}/predictions",
        json={"input": {"seconds": 30, "tick": 0.1}},
        headers={"Prefer": "wait=1", "Cancel-After": "60s"},
    )
    assert r.status_code == 202
    p = r.json()
    assert p["status"] in ("starting", "processing") and p["deployment"] == f"local/{name}"
    assert r.headers["location"] == p["urls"]["get"] and "deadline" in p
    c = http.post(f"/v1/predictions/{p['id']}/cancel").json()
    assert c["status"] == "canceled" or wait_until(
        lambda: http.get(f"/v1/predictions/{p['id']}").json()["status"] == "canceled"
    )
    # No Prefer: 201 starting. Invalid body: the shared create validation.
    r = http.post(f"/v1/deployments/local/{name}/predictions", json={"input": {"seconds": 0}})
    assert r.status_code == 201 and r.json()["status"] == "starting"
    lines = assert_problem(
        http.post(
            f"/v1/deployments/local/{name}/predictions",
            json={"input": {"seconds": -1}, "version": sleep_v},
        ),
        422,
    )["detail"].splitlines()
    assert "- Additional property version is not allowed" in lines
    assert_problem(
        http.post(f"/v1/deployments/local/{name}/predictions", json={"input": {"seconds": -1}}),
        422,
    )
    http.delete(f"/v1/deployments/local/{name}")

    name = fresh_name("stream")
    stream_v = latest_version(http, "local-demo/stream-text")
    http.post(
        "/v1/deployments",
        json=deployment_body(name, model="local-demo/stream-text", version=stream_v),
    )
    p = http.post(
        f"/v1/deployments/local/{name}/predictions",
        json={"input": {"prompt": "a b", "max_tokens": 3, "delay_ms": 0}},
    ).json()
    assert "stream" in p["urls"]
    with http.stream("GET", p["urls"]["stream"], headers={"Accept": "text/event-stream"}) as s:
        text = "".join(s.iter_text())
    assert "event: done" in text
    http.delete(f"/v1/deployments/local/{name}")


def test_deployment_webhook_start_body_has_deployment(http: httpx.Client) -> None:
    recv = Receiver()
    try:
        name = fresh_name("hook")
        http.post("/v1/deployments", json=deployment_body(name))
        p = http.post(
            f"/v1/deployments/local/{name}/predictions",
            json={"input": {"text": "w"}, "webhook": recv.url},
        ).json()
        reqs = recv.wait_for(lambda rs: any(r["json"]["status"] == "succeeded" for r in rs))
        assert all(r["json"]["deployment"] == f"local/{name}" for r in reqs)
        assert all(r["json"]["id"] == p["id"] for r in reqs)
        http.delete(f"/v1/deployments/local/{name}")
    finally:
        recv.close()


def test_deployments_pagination() -> None:
    with LocalServer(test_controls=True) as s:
        assert s.core is not None
        s.core.config.page_sizes["deployments"] = 2
        with httpx.Client(base_url=s.base_url, headers=AUTH) as h:
            names = [f"d{i}" for i in range(5)]
            for n in names:
                assert h.post("/v1/deployments", json=deployment_body(n)).status_code == 200
            seen: list[str] = []
            page = h.get("/v1/deployments").json()
            assert page["previous"] is None
            pages = [page]
            while page["next"]:
                page = h.get(page["next"]).json()
                pages.append(page)
            seen = [d["name"] for p in pages for d in p["results"]]
            assert seen == list(reversed(names))
            assert [len(p["results"]) for p in pages] == [2, 2, 1]
            back = h.get(pages[-1]["previous"]).json()
            assert [d["name"] for d in back["results"]] == ["d2", "d1"]
            assert_problem(h.get("/v1/deployments", params={"cursor": "!!"}), 400)
            # reset() clears deployments.
            s.reset()
            assert h.get("/v1/deployments").json()["results"] == []


async def test_deployments_client(client: replicate.Client, mode: str) -> None:
    name = fresh_name(f"cl{mode}")
    d = await call(
        mode,
        client.deployments,
        "create",
        name=name,
        model="replicate/hello-world",
        version=NEW_HELLO,
        hardware="cpu",
        min_instances=0,
        max_instances=2,
    )
    assert d.owner == "local" and d.name == name
    assert d.current_release.number == 1 and d.current_release.version == NEW_HELLO
    assert d.current_release.configuration.max_instances == 2
    got = await call(mode, client.deployments, "get", f"local/{name}")
    assert got.current_release.number == 1
    p = await call(mode, got.predictions, "create", input={"text": mode}, wait=True)
    assert p.status == "succeeded" and p.output == f"hello {mode}"
    assert getattr(p, "deployment", None) == f"local/{name}"
    p2 = await call(
        mode, client.deployments.predictions, "create", f"local/{name}", input={"text": "x"}
    )
    assert p2.status == "starting"
    upd = await call(mode, client.deployments, "update", "local", name, min_instances=1)
    assert upd.current_release.number == 2 and upd.current_release.configuration.min_instances == 1
    page = await call(mode, client.deployments, "list")
    assert name in [x.name for x in page.results]
    assert await call(mode, client.deployments, "delete", "local", name) is True
    with pytest.raises(ReplicateError) as err:
        await call(mode, client.deployments, "get", f"local/{name}")
    assert err.value.status == 404


# ---------------------------------------------------------------------------- trainings


def start_training(
    http: httpx.Client, model: str, destination: str, inp: dict[str, Any], **extra: Any
) -> httpx.Response:
    vid = latest_version(http, model)
    return http.post(
        f"/v1/models/{model}/versions/{vid}/trainings",
        json={"destination": destination, "input": inp, **extra},
    )


def test_training_scenario_raw(srv: LocalServer, http: httpx.Client) -> None:
    """A callable trainer: hello-trainable trained with greeting=howdy answers 'howdy {text}'."""
    dest = fresh_name("greeter")
    create_model(http, dest)
    base = latest_version(http, "local-demo/hello-trainable")
    r = start_training(http, "local-demo/hello-trainable", f"local/{dest}", {"greeting": "howdy"})
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    t = r.json()
    assert t["status"] == "starting" and t["model"] == "local-demo/hello-trainable"
    assert t["version"] == base and t["input"] == {"greeting": "howdy"}
    assert t["logs"] == "" and t["error"] is None and "output" not in t  # as recorded
    assert {"id", "model", "version", "input", "logs", "error", "status", "created_at"} <= set(t)
    assert t["urls"]["get"] == f"{srv.base_url}/v1/trainings/{t['id']}"
    assert t["urls"]["cancel"] == f"{srv.base_url}/v1/trainings/{t['id']}/cancel"
    assert len(t["id"]) == 26 and set(t["urls"]) == {"get", "cancel"}
    assert "data_removed" not in t and "completed_at" not in t

    done = wait_training(http, t["id"])
    assert done["status"] == "succeeded", done
    out = done["output"]
    assert set(out) == {"version", "weights"}
    ref, _, new_vid = out["version"].partition(":")
    assert ref == f"local/{dest}" and len(new_vid) == 64 and new_vid != base
    assert "training greeting 'howdy'" in done["logs"]
    assert set(done["metrics"]) == {"predict_time", "total_time"}
    assert set(done["urls"]) == {"get", "cancel"} and "data_removed" not in done
    assert done["completed_at"] >= done["started_at"] >= done["created_at"]
    weights = httpx.get(out["weights"])
    assert weights.status_code == 200 and weights.json() == {"greeting": "howdy"}

    # The destination has the new version as its latest, with the base's schema.
    m = http.get(f"/v1/models/local/{dest}").json()
    assert m["latest_version"]["id"] == new_vid
    base_schema = http.get(f"/v1/models/local-demo/hello-trainable/versions/{base}").json()
    schemas = base_schema["openapi_schema"]["components"]["schemas"]
    props = schemas["TrainingInput"]["properties"]
    assert sorted(props, key=lambda k: props[k]["x-order"]) == ["greeting", "delay_ms"]
    assert schemas["TrainingInput"]["properties"]["greeting"]["default"] == "hello"
    assert schemas["TrainingOutput"]["properties"]["weights"]["format"] == "uri"
    assert m["latest_version"]["openapi_schema"] == base_schema["openapi_schema"]
    assert [v["id"] for v in http.get(f"/v1/models/local/{dest}/versions").json()["results"]] == [
        new_vid
    ]
    # ... and answers with the trained greeting, by version and through the model.
    p = http.post(
        "/v1/predictions",
        json={"version": out["version"], "input": {"text": "world"}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["output"] == "howdy world" and p["model"] == f"local/{dest}"
    p = http.post(
        f"/v1/models/local/{dest}/predictions",
        json={"input": {"text": "partner"}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["output"] == "howdy partner"
    # The base model is unchanged.
    p = http.post(
        "/v1/models/local-demo/hello-trainable/predictions",
        json={"input": {"text": "world"}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["output"] == "hello world"

    # Training the trained version again uses the same trainer.
    dest2 = fresh_name("greeter")
    create_model(http, dest2)
    r = http.post(
        f"/v1/models/local/{dest}/versions/{new_vid}/trainings",
        json={"destination": f"local/{dest2}", "input": {"greeting": "g'day"}},
    )
    again = wait_training(http, r.json()["id"])
    p = http.post(
        "/v1/predictions",
        json={"version": again["output"]["version"], "input": {"text": "mate"}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["output"] == "g'day mate"


def test_training_errors(http: httpx.Client) -> None:
    dest = fresh_name("errs")
    create_model(http, dest)
    model = "local-demo/hello-trainable"
    vid = latest_version(http, model)
    url = f"/v1/models/{model}/versions/{vid}/trainings"
    # The recorded real reply for a missing destination.
    r = http.post(url, json={"destination": "<invalid>", "input": {}})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "detail": "The specified training destination does not exist",
        "status": 404,
    }
    for bad in ("local/nope", "replicate/hello-world", "a/b/c", ""):
        assert_problem(
            http.post(url, json={"destination": bad, "input": {}}),
            404,
            "The specified training destination does not exist",
        )
    # Unknown base model or version.
    assert_problem(
        http.post(
            f"/v1/models/{model}/versions/{'0' * 64}/trainings",
            json={"destination": f"local/{dest}", "input": {}},
        ),
        404,
    )
    assert_problem(
        http.post(
            f"/v1/models/replicate/hello-world/versions/{vid}/trainings",
            json={"destination": f"local/{dest}", "input": {}},
        ),
        404,
    )
    # Body shape.
    lines = assert_problem(http.post(url, json={"extra": 1}), 422)["detail"].splitlines()
    assert lines == ["- destination is required", "- input is required"]
    lines = assert_problem(
        http.post(
            url,
            json={
                "destination": f"local/{dest}",
                "input": [],
                "webhook": "ftp://x",
                "webhook_events_filter": ["start", "nope"],
            },
        ),
        422,
    )["detail"].splitlines()
    assert "- input: Invalid type. Expected: object, given: array" in lines
    assert "- webhook: must be an absolute http(s) URL" in lines
    assert any(line.startswith("- webhook_events_filter.1:") for line in lines)
    # Training input against the trainer's schema.
    body = assert_problem(
        http.post(
            url, json={"destination": f"local/{dest}", "input": {"greeting": 3, "delay_ms": -1}}
        ),
        422,
    )
    assert body["title"] == "Input validation failed"
    assert {f["field"] for f in body["invalid_fields"]} == {"input.greeting", "input.delay_ms"}
    assert_problem(http.post(url, content=b"nope"), 400)
    # Nothing was created by the failed requests.
    assert http.get(f"/v1/models/local/{dest}").json()["latest_version"] is None


def test_training_cancel_get_list(http: httpx.Client) -> None:
    dest = fresh_name("cancel")
    create_model(http, dest)
    t = start_training(
        http, "local-demo/hello-trainable", f"local/{dest}", {"greeting": "x", "delay_ms": 60000}
    ).json()
    running = wait_until(
        lambda: (x := http.get(f"/v1/trainings/{t['id']}").json())["status"] == "processing" and x
    )
    assert running["completed_at"] is None and running["output"] is None  # as recorded
    r = http.post(f"/v1/trainings/{t['id']}/cancel")
    assert r.status_code == 200
    c = r.json()
    if c["status"] != "canceled":
        c = wait_training(http, t["id"])
    assert c["status"] == "canceled" and c["output"] is None
    assert "completed_at" in c and "predict_time" in c["metrics"]
    again = http.post(f"/v1/trainings/{t['id']}/cancel").json()
    assert again["status"] == "canceled" and again["completed_at"] == c["completed_at"]
    # No version was added.
    assert http.get(f"/v1/models/local/{dest}").json()["latest_version"] is None

    t2 = start_training(http, "local-demo/hello-trainable", f"local/{dest}", {}).json()
    done = wait_training(http, t2["id"])
    assert done["status"] == "succeeded"
    page = http.get("/v1/trainings").json()
    assert page["next"] is None and page["previous"] is None
    ids = [x["id"] for x in page["results"]]
    assert ids.index(t2["id"]) < ids.index(t["id"])  # newest first
    assert all(x["urls"]["get"].endswith(f"/v1/trainings/{x['id']}") for x in page["results"])

    # Predictions are not trainings, and vice versa.
    p = http.post("/v1/models/replicate/hello-world/predictions", json={"input": {"text": "x"}})
    pid = p.json()["id"]
    assert pid not in ids
    assert_problem(http.get(f"/v1/trainings/{pid}"), 404)
    assert_problem(http.post(f"/v1/trainings/{pid}/cancel"), 404)
    assert_problem(http.get("/v1/trainings/doesnotexist"), 404)


def test_emulated_trainer(http: httpx.Client) -> None:
    """A version without train(): succeeds, weights = the input as JSON, code unchanged."""
    dest = fresh_name("emu")
    create_model(http, dest)
    t = start_training(
        http, "replicate/hello-world", f"local/{dest}", {"anything": [1, 2], "lr": 0.1}
    ).json()
    done = wait_training(http, t["id"])
    assert done["status"] == "succeeded", done
    assert httpx.get(done["output"]["weights"]).json() == {"anything": [1, 2], "lr": 0.1}
    assert "emulated training" in done["logs"]
    p = http.post(
        "/v1/predictions",
        json={"version": done["output"]["version"], "input": {"text": "emu"}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["output"] == "hello emu"


def test_registered_trainer_and_weights_argument(srv: LocalServer, http: httpx.Client) -> None:
    """A callable with a trainer: the trained version gets ``weights=<Path>``."""
    name = fresh_name("echo")
    seen: list[Any] = []

    def echo(text: str, weights: Path | None = None) -> str:
        seen.append(weights)
        suffix = Path(weights).read_text() if weights is not None else "base"
        return f"{text}:{suffix}"

    def train(word: str = "w", cancel_event: threading.Event | None = None) -> bytes:
        print("training", word)
        return word.encode()

    srv.register(f"local/{name}", echo)
    assert srv.core is not None
    register_trainer(srv.core, f"local/{name}", train)
    t = start_training(http, f"local/{name}", f"local/{name}", {"word": "trained"}).json()
    done = wait_training(http, t["id"])
    assert done["status"] == "succeeded", done
    assert done["output"]["version"].startswith(f"local/{name}:")
    assert httpx.get(done["output"]["weights"]).content == b"trained"
    # The destination is the model itself: its latest version is now the trained one.
    p = http.post(
        f"/v1/models/local/{name}/predictions",
        json={"input": {"text": "t"}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["output"] == "t:trained"
    # Training the trained version again starts from the code, with the new weights.
    again = http.post(
        f"/v1/models/local/{name}/versions/{done['output']['version'].split(':')[1]}/trainings",
        json={"destination": f"local/{name}", "input": {"word": "twice"}},
    ).json()
    assert wait_training(http, again["id"])["status"] == "succeeded"
    p = http.post(
        f"/v1/models/local/{name}/predictions",
        json={"input": {"text": "t"}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["output"] == "t:twice"
    assert_problem(start_training(http, f"local/{name}", f"local/{name}", {"word": 5}), 422)


def test_training_failure_and_webhooks(srv: LocalServer, http: httpx.Client) -> None:
    name = fresh_name("failing")

    def model(text: str) -> str:
        return text

    def train(cancel_event: threading.Event | None = None) -> bytes:
        print("about to fail")
        raise RuntimeError("no data")

    srv.register(f"local/{name}", model)
    assert srv.core is not None
    register_trainer(srv.core, f"local/{name}", train)
    recv = Receiver()
    try:
        t = start_training(
            http,
            f"local/{name}",
            f"local/{name}",
            {},
            webhook=recv.url,
            webhook_events_filter=["start", "completed"],
        ).json()
        reqs = recv.wait_for(lambda rs: any(r["json"]["status"] == "failed" for r in rs))
        assert [r["json"]["status"] for r in reqs] == ["starting", "failed"]
        final = reqs[-1]["json"]
        assert final["id"] == t["id"] and final["error"] == "no data"
        assert final["urls"]["get"].endswith(f"/v1/trainings/{t['id']}")
        assert "about to fail" in final["logs"]
    finally:
        recv.close()
    assert len(http.get(f"/v1/models/local/{name}/versions").json()["results"]) == 1


async def test_trainings_client(client: replicate.Client, http: httpx.Client, mode: str) -> None:
    dest = fresh_name(f"tc{mode}")
    create_model(http, dest)
    vid = latest_version(http, "local-demo/hello-trainable")
    t = await call(
        mode,
        client.trainings,
        "create",
        version=f"local-demo/hello-trainable:{vid}",
        input={"greeting": "howdy"},
        destination=f"local/{dest}",
    )
    assert t.status == "starting" and t.version == vid
    t = await call(mode, t, "wait", timeout=30)
    assert t.status == "succeeded"
    assert t.destination == f"local/{dest}"
    assert t.output["version"].startswith(f"local/{dest}:")
    got = await call(mode, client.trainings, "get", t.id)
    assert got.output == t.output and got.metrics["predict_time"] >= 0
    page = await call(mode, client.trainings, "list")
    assert t.id in [x.id for x in page.results]
    out = await call(mode, client, "run", t.output["version"], input={"text": "there"})
    assert out == "howdy there"
    # Model + version form, then cancel through the client.
    slow = await call(
        mode,
        client.trainings,
        "create",
        "local-demo/hello-trainable",
        vid,
        {"greeting": "x", "delay_ms": 60000},
        destination=f"local/{dest}",
    )
    canceled = await call(mode, client.trainings, "cancel", slow.id)
    if canceled.status != "canceled":
        canceled = await call(mode, canceled, "wait", timeout=30)
    assert canceled.status == "canceled"
    with pytest.raises(ReplicateError) as err:
        await call(
            mode,
            client.trainings,
            "create",
            version=f"local-demo/hello-trainable:{vid}",
            input={},
            destination="local/does-not-exist",
        )
    assert err.value.status == 404
    assert "does not exist" in str(err.value)


def test_trained_version_survives_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "state.sqlite3")
    with LocalServer(db=db) as s, httpx.Client(base_url=s.base_url, headers=AUTH) as h:
        create_model(h, "greeter")
        t = start_training(
            h, "local-demo/hello-trainable", "local/greeter", {"greeting": "ahoy"}
        ).json()
        version = wait_training(h, t["id"])["output"]["version"]
    with LocalServer(db=db) as s, httpx.Client(base_url=s.base_url, headers=AUTH) as h:
        p = h.post(
            "/v1/predictions",
            json={"version": version, "input": {"text": "there"}},
            headers={"Prefer": "wait"},
        ).json()
        assert p["status"] == "succeeded" and p["output"] == "ahoy there"
        assert h.get(f"/v1/trainings/{t['id']}").json()["output"]["version"] == version


# ---------------------------------------------------------------------------- collections, search


def test_collections_raw(srv: LocalServer, http: httpx.Client) -> None:
    page = http.get("/v1/collections").json()
    assert set(page) == {"next", "previous", "results"}
    slugs = [c["slug"] for c in page["results"]]
    assert {"local-demos", "streaming-language-models"} <= set(slugs)
    assert all(set(c) == {"name", "slug", "description"} for c in page["results"])
    c = http.get("/v1/collections/local-demos").json()
    assert set(c) == {"name", "slug", "description", "full_description", "models"}
    names = [f"{m['owner']}/{m['name']}" for m in c["models"]]
    assert names[0] == "replicate/hello-world" and "local-demo/hello-trainable" in names
    hello = c["models"][0]
    assert hello["latest_version"]["id"] == NEW_HELLO
    assert hello["url"] == f"{srv.base_url}/web/replicate/hello-world"
    assert hello["default_example"]["output"] == "hello world"
    s = http.get("/v1/collections/streaming-language-models").json()
    assert [m["name"] for m in s["models"]] == ["stream-text"]
    assert_problem(
        http.get("/v1/collections/nope"), 404, "The requested resource could not be found."
    )


def test_search_raw(srv: LocalServer, http: httpx.Client) -> None:
    r = http.get("/v1/search", params={"query": "hello"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"query", "models", "collections", "pages"}
    assert body["query"] == "hello"
    refs = [f"{m['model']['owner']}/{m['model']['name']}" for m in body["models"]]
    assert refs[0] == "replicate/hello-world"
    first = body["models"][0]
    assert set(first) == {"model", "metadata"}
    assert set(first["metadata"]) == {"generated_description", "tags", "score"}
    assert first["metadata"]["tags"] == ["demo", "text"] and first["metadata"]["score"] > 0
    assert first["model"]["latest_version"]["id"] == NEW_HELLO
    scores = [m["metadata"]["score"] for m in body["models"]]
    assert scores == sorted(scores, reverse=True)
    assert "local-demos" in [c["slug"] for c in body["collections"]]
    assert "replicate/hello-world" in body["collections"][0]["models"]
    assert all(set(p) == {"name", "href"} for p in body["pages"]) and body["pages"]
    # limit, case-insensitivity, no hits.
    one = http.get("/v1/search", params={"query": "HELLO", "limit": 1}).json()
    assert len(one["models"]) == 1 and one["query"] == "HELLO"
    none = http.get("/v1/search", params={"query": "zzzqqq"}).json()
    assert none == {"query": "zzzqqq", "models": [], "collections": [], "pages": []}
    streaming = http.get("/v1/search", params={"query": "streaming"}).json()
    assert "streaming-language-models" in [c["slug"] for c in streaming["collections"]]
    # 400 with a plain JSON {detail}.
    for params in ({}, {"query": ""}, {"query": "  "}):
        r = http.get("/v1/search", params=params)
        assert r.status_code == 400 and r.headers["content-type"] == "application/json"
        assert r.json()["detail"] == 'Query parameter "query" is required'
    for limit in ("0", "51", "x"):
        r = http.get("/v1/search", params={"query": "hello", "limit": limit})
        assert r.status_code == 400 and "limit" in r.json()["detail"]
    # Private models are not searchable.
    private = fresh_name("hellosecret")
    create_model(http, private)
    found = http.get("/v1/search", params={"query": private}).json()
    assert found["models"] == []


def test_catalogue_endpoints_find_hello_world(http: httpx.Client) -> None:
    """Catalogue: collections, QUERY /models and /search all find hello-world."""
    in_collection = http.get("/v1/collections/local-demos").json()["models"]
    assert "hello-world" in [m["name"] for m in in_collection]
    q = http.request(
        "QUERY", "/v1/models", content=b"hello", headers={"Content-Type": "text/plain"}
    ).json()
    assert "hello-world" in [m["name"] for m in q["results"]]
    s = http.get("/v1/search", params={"query": "hello"}).json()
    assert "hello-world" in [m["model"]["name"] for m in s["models"]]
    hw = http.get("/v1/hardware").json()
    assert [h["sku"] for h in hw] == ["cpu", "gpu-t4", "gpu-a40-small", "gpu-a40-large"]


async def test_collections_and_search_client(client: replicate.Client, mode: str) -> None:
    page = await call(mode, client.collections, "list")
    assert "local-demos" in [c.slug for c in page.results]
    c = await call(mode, client.collections, "get", "local-demos")
    assert c.slug == "local-demos" and c.full_description
    assert "hello-world" in [m.name for m in c.models]
    assert c.models[0].latest_version.id == NEW_HELLO
    res = await call(mode, client, "search", "hello", limit=5)
    assert res.query == "hello"
    assert res.models[0].model.name == "hello-world"
    assert res.models[0].metadata.score > 0
    assert "local-demos" in [x.slug for x in res.collections]
    with pytest.raises(ReplicateError) as err:
        await call(mode, client.collections, "get", "nope")
    assert err.value.status == 404


def test_demo_models_off_has_no_bundled_collections() -> None:
    with LocalServer(demo_models=False) as s, httpx.Client(base_url=s.base_url, headers=AUTH) as h:
        assert h.get("/v1/collections").json()["results"] == []
        assert h.get("/v1/search", params={"query": "hello"}).json()["models"] == []


def test_search_without_token_is_allowed(srv: LocalServer) -> None:
    """The spec marks /search as public (``security: []``)."""
    with httpx.Client(base_url=srv.base_url) as anon:
        r = anon.get("/v1/search", params={"query": "hello"})
        assert r.status_code == 200 and r.json()["models"]


def test_list_replies_are_compact_json(http: httpx.Client) -> None:
    """Every catalogue reply is compact JSON with the rate-limit headers."""
    for path in ("/v1/collections", "/v1/deployments", "/v1/trainings"):
        r = http.get(path)
        assert r.status_code == 200 and "ratelimit-reset" in r.headers
        assert json.loads(r.content) == r.json() and b", " not in r.content[:20]


def test_trainer_file_inputs(srv: LocalServer, http: httpx.Client) -> None:
    """File inputs of a trainer arrive as Paths: uploaded files and ``data:`` URIs."""
    name = fresh_name("files")

    def model(text: str, weights: Path | None = None) -> str:
        return f"{text}:{Path(weights).read_text() if weights else ''}"

    def train(data: Path, extra: list[Path] | None = None) -> Path:
        out = Path(data).parent / "weights.txt"
        parts = [Path(data).read_text(), *(Path(p).read_text() for p in extra or [])]
        out.write_text("+".join(parts))
        return out

    srv.register(f"local/{name}", model)
    assert srv.core is not None
    register_trainer(srv.core, f"local/{name}", train)
    up = http.post("/v1/files", files={"content": ("a.txt", b"uploaded", "text/plain")}).json()
    t = start_training(
        http,
        f"local/{name}",
        f"local/{name}",
        {"data": up["urls"]["get"], "extra": ["data:text/plain;base64,aW5saW5l"]},
    ).json()
    done = wait_training(http, t["id"])
    assert done["status"] == "succeeded", done
    assert done["output"]["weights"].endswith("/weights.txt")
    assert httpx.get(done["output"]["weights"]).text == "uploaded+inline"
    p = http.post(
        f"/v1/models/local/{name}/predictions",
        json={"input": {"text": "t"}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["output"] == "t:uploaded+inline"
    # A required file input is validated like any input.
    body = assert_problem(start_training(http, f"local/{name}", f"local/{name}", {}), 422)
    assert body["detail"] == "- input: data is required"


def test_trained_version_outlives_training_data_removal() -> None:
    with LocalServer(test_controls=True) as s, httpx.Client(base_url=s.base_url, headers=AUTH) as h:
        create_model(h, "greeter")
        t = start_training(
            h, "local-demo/hello-trainable", "local/greeter", {"greeting": "hey"}
        ).json()
        done = wait_training(h, t["id"])
        s.advance_clock("2h")
        removed = h.get(f"/v1/trainings/{t['id']}").json()
        assert removed["output"] is None and removed["input"] == {}
        assert "data_removed" not in removed  # not a field of training objects
        assert httpx.get(done["output"]["weights"]).status_code == 404
        p = h.post(
            "/v1/models/local/greeter/predictions",
            json={"input": {"text": "you"}},
            headers={"Prefer": "wait"},
        ).json()
        assert p["output"] == "hey you"


def test_scenario_19_other_catalogue_endpoints(http: httpx.Client) -> None:
    """Catalogue, the rest: account, readme (200 and 404) and examples."""
    assert http.get("/v1/account").json()["username"] == "local"
    r = http.get("/v1/models/replicate/hello-world/readme")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    name = fresh_name("noreadme")
    create_model(http, name)
    assert_problem(http.get(f"/v1/models/local/{name}/readme"), 404)
    ex = http.get("/v1/models/replicate/hello-world/examples").json()
    assert ex["results"][0]["output"] == "hello world"


# The 37 operations of the official spec (version 1.0.0-a1), as (method, /v1 path).
SPEC_OPERATIONS = [
    ("GET", "/account"),
    ("GET", "/collections"),
    ("GET", "/collections/{collection_slug}"),
    ("GET", "/deployments"),
    ("POST", "/deployments"),
    ("DELETE", "/deployments/{deployment_owner}/{deployment_name}"),
    ("GET", "/deployments/{deployment_owner}/{deployment_name}"),
    ("PATCH", "/deployments/{deployment_owner}/{deployment_name}"),
    ("POST", "/deployments/{deployment_owner}/{deployment_name}/predictions"),
    ("GET", "/files"),
    ("POST", "/files"),
    ("DELETE", "/files/{file_id}"),
    ("GET", "/files/{file_id}"),
    ("GET", "/files/{file_id}/download"),
    ("GET", "/hardware"),
    ("GET", "/models"),
    ("POST", "/models"),
    ("QUERY", "/models"),
    ("DELETE", "/models/{model_owner}/{model_name}"),
    ("GET", "/models/{model_owner}/{model_name}"),
    ("PATCH", "/models/{model_owner}/{model_name}"),
    ("GET", "/models/{model_owner}/{model_name}/examples"),
    ("POST", "/models/{model_owner}/{model_name}/predictions"),
    ("GET", "/models/{model_owner}/{model_name}/readme"),
    ("GET", "/models/{model_owner}/{model_name}/versions"),
    ("DELETE", "/models/{model_owner}/{model_name}/versions/{version_id}"),
    ("GET", "/models/{model_owner}/{model_name}/versions/{version_id}"),
    ("POST", "/models/{model_owner}/{model_name}/versions/{version_id}/trainings"),
    ("GET", "/predictions"),
    ("POST", "/predictions"),
    ("GET", "/predictions/{prediction_id}"),
    ("POST", "/predictions/{prediction_id}/cancel"),
    ("GET", "/search"),
    ("GET", "/trainings"),
    ("GET", "/trainings/{training_id}"),
    ("POST", "/trainings/{training_id}/cancel"),
    ("GET", "/webhooks/default/secret"),
]


def test_every_spec_operation_is_routed(srv: LocalServer) -> None:
    """With the catalogue mounted, each of the 37 operations reaches a handler (no 404/405 route miss)."""
    import re

    from starlette.routing import Match

    assert len(SPEC_OPERATIONS) == 37
    routes = srv._server.config.app.router.routes
    for method, path in SPEC_OPERATIONS:
        concrete = "/v1" + re.sub(r"\{[^}]+\}", "x", path)
        scope = {"type": "http", "method": method, "path": concrete, "root_path": ""}
        assert any(r.matches(scope)[0] == Match.FULL for r in routes), (method, path)


def test_min_instances_keeps_the_version_warm(srv: LocalServer, http: httpx.Client) -> None:
    """``min_instances >= 1`` calls the version callable's ``keep_warm()`` hook, if any."""
    warmed = threading.Event()

    def model(text: str) -> str:
        return text

    model.keep_warm = warmed.set  # type: ignore[attr-defined]
    name = fresh_name("warm")
    vid = srv.register(f"local/{name}", model)
    body = deployment_body(fresh_name("w"), model=f"local/{name}", version=vid, min_instances=0)
    assert http.post("/v1/deployments", json=body).status_code == 200
    assert not warmed.is_set()
    r = http.patch(f"/v1/deployments/local/{body['name']}", json={"min_instances": 1})
    assert r.status_code == 200
    assert warmed.wait(10)
