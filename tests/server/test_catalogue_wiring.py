"""The catalogue wired into the core (not patched in at runtime).

``build_app`` mounts it; ``LocalApi._create(deployment=)``, ``Core.reset``, ``Runner.submit_run``,
``Registry.attach_impl``, the 409 of ``versions.delete``, training ids on the predictions path,
training-shaped webhook bodies and ``register(train=, load=)`` are proper code paths.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from replicate.local.core import Core
from replicate.local.demo_models import HELLO_WORLD_VERSIONS
from replicate.local.server import LocalServer
from server.helpers import Receiver, wait_until

TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
NEW_HELLO = HELLO_WORLD_VERSIONS[1]


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalServer]:
    with LocalServer(test_controls=True) as s:
        yield s


@pytest.fixture(scope="module")
def http(srv: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=srv.base_url, headers={"Authorization": "Bearer t"}, timeout=30
    ) as c:
        yield c


def _create_model(http: httpx.Client, name: str) -> None:
    r = http.post(
        "/v1/models",
        json={"owner": "local", "name": name, "visibility": "private", "hardware": "cpu"},
    )
    assert r.status_code == 201, r.text


def _wait_training(http: httpx.Client, tid: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        t = http.get(f"/v1/trainings/{tid}").json()
        return t if t["status"] in TERMINAL else None

    return wait_until(done)  # type: ignore[no-any-return]


def test_the_app_serves_the_catalogue_without_runtime_patches(
    srv: LocalServer, http: httpx.Client
) -> None:
    core = srv.core
    assert core is not None
    paths = {getattr(r, "path", None) for r in srv._server.config.app.router.routes}
    assert {"/v1/deployments", "/v1/trainings", "/v1/collections", "/v1/search"} <= paths
    r = http.post(
        "/v1/deployments",
        json={
            "name": "wired",
            "model": "replicate/hello-world",
            "version": NEW_HELLO,
            "hardware": "cpu",
            "min_instances": 0,
            "max_instances": 1,
        },
    )
    assert r.status_code == 200, r.text
    p = http.post("/v1/deployments/local/wired/predictions", json={"input": {"text": "d"}})
    assert p.status_code == 201 and p.json()["deployment"] == "local/wired"
    # No shim around create_prediction, no wrapper around reset.
    assert core.create_prediction.__func__ is Core.create_prediction  # type: ignore[attr-defined]
    assert core.reset.__func__ is Core.reset  # type: ignore[attr-defined]
    assert http.delete("/v1/deployments/local/wired").status_code == 204


def test_version_in_use_by_a_deployment_cannot_be_deleted(
    srv: LocalServer, http: httpx.Client
) -> None:
    def echo(text: str) -> str:
        return text

    vid = srv.register("local/in-use", echo)
    body = {
        "name": "in-use",
        "model": "local/in-use",
        "version": vid,
        "hardware": "cpu",
        "min_instances": 0,
        "max_instances": 1,
    }
    assert http.post("/v1/deployments", json=body).status_code == 200
    r = http.delete(f"/v1/models/local/in-use/versions/{vid}")
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "The version is used by a deployment."
    assert http.delete("/v1/deployments/local/in-use").status_code == 204
    assert http.delete(f"/v1/models/local/in-use/versions/{vid}").status_code == 202


def test_register_with_train_and_load(srv: LocalServer, http: httpx.Client) -> None:
    """``LocalServer.register(train=, load=)``: trainings run ``train``; trained versions ``load``."""

    def greet(text: str) -> str:
        return f"hi {text}"

    def train(word: str = "yo", cancel_event: threading.Event | None = None) -> dict[str, str]:
        print("training", word)
        return {"word": word}

    def load(weights: Path) -> Any:
        word = json.loads(Path(weights).read_text())["word"]

        def trained(text: str) -> str:
            return f"{word} {text}"

        return trained

    with pytest.raises(ValueError, match="load= needs train="):
        srv.register("local/greet-bad", greet, load=load)
    base = srv.register("local/greet", greet, train=train, load=load)
    _create_model(http, "greet-dest")
    schema = http.get(f"/v1/models/local/greet/versions/{base}").json()["openapi_schema"]
    assert "word" in schema["components"]["schemas"]["TrainingInput"]["properties"]
    r = http.post(
        f"/v1/models/local/greet/versions/{base}/trainings",
        json={"destination": "local/greet-dest", "input": {"word": "howdy"}},
    )
    assert r.status_code == 201, r.text
    done = _wait_training(http, r.json()["id"])
    assert done["status"] == "succeeded", done
    assert "training howdy" in done["logs"]
    p = http.post(
        "/v1/models/local/greet-dest/predictions",
        json={"input": {"text": "bob"}},
        headers={"Prefer": "wait"},
    ).json()
    assert p["output"] == "howdy bob"


def test_training_ids_resolve_on_the_predictions_path_and_webhooks_have_its_shape(
    srv: LocalServer, http: httpx.Client
) -> None:
    _create_model(http, "greeter-hooks")
    hello = http.get("/v1/models/local-demo/hello-trainable").json()["latest_version"]["id"]
    recv = Receiver()
    try:
        r = http.post(
            f"/v1/models/local-demo/hello-trainable/versions/{hello}/trainings",
            json={
                "destination": "local/greeter-hooks",
                "input": {"greeting": "howdy"},
                "webhook": recv.url,
                "webhook_events_filter": ["start", "completed"],
            },
        )
        assert r.status_code == 201, r.text
        tid = r.json()["id"]
        reqs = recv.wait_for(lambda rs: any(x["json"]["status"] in TERMINAL for x in rs))
    finally:
        recv.close()
    done = _wait_training(http, tid)
    via_predictions = http.get(f"/v1/predictions/{tid}")
    assert via_predictions.status_code == 200
    assert via_predictions.json() == done  # the same object on both paths
    assert set(done["urls"]) == {"get", "cancel"}
    assert "data_removed" not in done and "deployment" not in done
    for req in reqs:
        body = req["json"]
        assert body["id"] == tid
        assert body["urls"] == {
            "get": f"{srv.base_url}/v1/trainings/{tid}",
            "cancel": f"{srv.base_url}/v1/trainings/{tid}/cancel",
        }
        assert "data_removed" not in body and "completed_at" in body
    assert reqs[0]["json"]["completed_at"] is None
    assert reqs[-1]["json"]["output"]["version"].startswith("local/greeter-hooks:")
    # Cancel on the predictions path is a no-op on the finished training, in its shape too.
    c = http.post(f"/v1/predictions/{tid}/cancel")
    assert c.status_code == 200 and c.json() == done
    # predictions.list still shows predictions only.
    listed = http.get("/v1/predictions").json()["results"]
    assert tid not in {p["id"] for p in listed}


def test_reset_clears_deployments_and_trained_versions(
    srv: LocalServer, http: httpx.Client
) -> None:
    _create_model(http, "greeter-reset")
    hello = http.get("/v1/models/local-demo/hello-trainable").json()["latest_version"]["id"]
    r = http.post(
        f"/v1/models/local-demo/hello-trainable/versions/{hello}/trainings",
        json={"destination": "local/greeter-reset", "input": {"greeting": "hey"}},
    )
    trained = _wait_training(http, r.json()["id"])["output"]["version"].split(":")[1]
    body = {
        "name": "reset-me",
        "model": "replicate/hello-world",
        "version": NEW_HELLO,
        "hardware": "cpu",
        "min_instances": 0,
        "max_instances": 1,
    }
    assert http.post("/v1/deployments", json=body).status_code == 200
    srv.reset()
    assert http.get("/v1/deployments/local/reset-me").status_code == 404
    assert http.get("/v1/deployments").json()["results"] == []
    assert srv.core is not None
    assert srv.core.registry.get_version(trained) is None
    assert srv.core.store.query("SELECT * FROM trained_versions") == []
