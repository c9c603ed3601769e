"""Prediction create/get against the real socket: status codes, headers, JSON shapes."""

from __future__ import annotations

import re

import httpx

from replicate.local.demo_models import HELLO_WORLD_VERSIONS

REQUIRED = {
    "id",
    "model",
    "version",
    "input",
    "output",
    "data_removed",
    "error",
    "status",
    "created_at",
    "urls",
}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def test_hello_world_prefer_wait(http: httpx.Client) -> None:
    r = http.post(
        "/v1/predictions",
        json={"version": "replicate/hello-world", "input": {"text": "world"}},
        headers={"Prefer": "wait"},
    )
    assert r.status_code == 201
    assert r.headers["preference-applied"] == "wait"
    assert r.headers["content-type"] == "application/json"
    assert r.headers["ratelimit-remaining"].isdigit()
    assert r.headers["ratelimit-reset"].isdigit()
    p = r.json()
    assert set(p) >= REQUIRED
    assert p["status"] == "succeeded"
    assert p["output"] == "hello world"
    assert p["model"] == "replicate/hello-world"
    assert p["version"] == HELLO_WORLD_VERSIONS[1]
    assert re.fullmatch(r"[a-z0-9]{26}", p["id"])
    assert (
        ISO.match(p["created_at"]) and ISO.match(p["started_at"]) and ISO.match(p["completed_at"])
    )
    assert set(p["metrics"]) == {"predict_time", "total_time"}
    assert (
        p["data_removed"] is False
        and p["error"] is None
        and p["logs"] == ""
        and p["source"] == "api"
    )
    assert set(p["urls"]) == {"get", "cancel", "web"}
    assert p["urls"]["get"] == f"{str(http.base_url).rstrip('/')}/v1/predictions/{p['id']}"

    g = http.get(p["urls"]["get"])
    assert g.status_code == 200
    assert g.json() == p


def test_prefer_wait_n_echoed(http: httpx.Client) -> None:
    r = http.post(
        "/v1/predictions",
        json={"version": "replicate/hello-world", "input": {"text": "a"}},
        headers={"Prefer": "wait=10"},
    )
    assert r.status_code == 201
    assert r.headers["preference-applied"] == "wait=10"


def test_both_documented_versions(http: httpx.Client) -> None:
    for vid in HELLO_WORLD_VERSIONS:
        for ref in (f"replicate/hello-world:{vid}", vid):
            r = http.post(
                "/v1/predictions",
                json={"version": ref, "input": {"text": "world"}},
                headers={"Prefer": "wait"},
            )
            assert r.status_code == 201, r.text
            assert r.json()["output"] == "hello world"
            assert r.json()["version"] == vid


def test_create_without_prefer_is_201_starting(http: httpx.Client) -> None:
    r = http.post("/v1/models/local-demo/sleep/predictions", json={"input": {"seconds": 0}})
    assert r.status_code == 201
    assert "preference-applied" not in r.headers
    p = r.json()
    # As the real API answers every create without Prefer, fast models included.
    assert p["status"] == "starting"
    assert p.get("started_at") is None and p["output"] is None


def test_get_unknown_prediction_404(http: httpx.Client) -> None:
    r = http.get("/v1/predictions/doesnotexist")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {"detail": "The requested resource could not be found.", "status": 404}
