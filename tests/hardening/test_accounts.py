"""``--token NAME=TOKEN`` accounts are isolated (404 across accounts); plain tokens are one
account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import replicate
from replicate.exceptions import ReplicateError
from replicate.local.auth import split_token
from replicate.local.server import LocalServer


def read(f: Path) -> str:
    return f.read_text()


TOKENS = ["alice=r8_alice", "bob=r8_bob", "r8_plain_one", "r8_plain_two"]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(token=TOKENS, test_controls=True) as s:
        yield s


def client(server: LocalServer, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


@pytest.fixture(scope="module")
def alice(server: LocalServer) -> Iterator[httpx.Client]:
    with client(server, "r8_alice") as c:
        yield c


@pytest.fixture(scope="module")
def bob(server: LocalServer) -> Iterator[httpx.Client]:
    with client(server, "r8_bob") as c:
        yield c


@pytest.fixture(scope="module")
def objects(server: LocalServer, alice: httpx.Client) -> dict[str, Any]:
    """Alice's prediction, file, private model, deployment and training."""
    p = alice.post("/v1/models/local-demo/sleep/predictions", json={"input": {"seconds": 0}}).json()
    f = alice.post("/v1/files", files={"content": ("a.txt", b"alice's file")}).json()
    m = alice.post(
        "/v1/models",
        json={"owner": "alice", "name": "secret", "visibility": "private", "hardware": "cpu"},
    )
    assert m.status_code == 201, m.text
    version = alice.get("/v1/models/local-demo/sleep").json()["latest_version"]["id"]
    d = alice.post(
        "/v1/deployments",
        json={
            "name": "dep",
            "model": "local-demo/sleep",
            "version": version,
            "hardware": "cpu",
            "min_instances": 0,
            "max_instances": 1,
        },
    )
    assert d.status_code in (200, 201), d.text
    base = alice.get("/v1/models/local-demo/hello-trainable").json()["latest_version"]["id"]
    t = alice.post(
        f"/v1/models/local-demo/hello-trainable/versions/{base}/trainings",
        json={"destination": "alice/secret", "input": {"greeting": "hey"}},
    )
    assert t.status_code == 201, t.text
    server.wait_for_status(p["id"])
    server.wait_for_status(t.json()["id"])
    return {"prediction": p["id"], "file": f["id"], "training": t.json()["id"]}


def test_account_names(alice: httpx.Client, bob: httpx.Client, server: LocalServer) -> None:
    assert alice.get("/v1/account").json()["username"] == "alice"
    assert bob.get("/v1/account").json()["username"] == "bob"
    with client(server, "r8_plain_one") as plain:
        assert plain.get("/v1/account").json()["username"] == "local"
    with client(server, "alice=r8_alice") as literal:  # the NAME=TOKEN value is not a token
        assert literal.get("/v1/account").status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/predictions/{prediction}"),
        ("POST", "/v1/predictions/{prediction}/cancel"),
        ("GET", "/v1/files/{file}"),
        ("DELETE", "/v1/files/{file}"),
        ("GET", "/v1/models/alice/secret"),
        ("GET", "/v1/models/alice/secret/versions"),
        ("GET", "/v1/deployments/alice/dep"),
        ("GET", "/v1/trainings/{training}"),
        ("POST", "/v1/trainings/{training}/cancel"),
    ],
)
def test_another_accounts_objects_are_not_found(
    objects: dict[str, Any], alice: httpx.Client, bob: httpx.Client, method: str, path: str
) -> None:
    url = path.format(**objects)
    assert bob.request(method, url).status_code == 404
    if method == "GET":
        assert alice.request(method, url).status_code == 200


def test_lists_show_only_the_accounts_own(
    objects: dict[str, Any], alice: httpx.Client, bob: httpx.Client
) -> None:
    for path, key in [
        ("/v1/predictions", "prediction"),
        ("/v1/files", "file"),
        ("/v1/trainings", "training"),
    ]:
        assert objects[key] in {x["id"] for x in alice.get(path).json()["results"]}
        assert objects[key] not in {x["id"] for x in bob.get(path).json()["results"]}
    assert "dep" not in {d["name"] for d in bob.get("/v1/deployments").json()["results"]}


def test_another_accounts_upload_is_not_a_readable_input(
    server: LocalServer, objects: dict[str, Any], alice: httpx.Client, bob: httpx.Client
) -> None:
    server.register("acct/read", read, version_key="read-v1")
    url = alice.get(f"/v1/files/{objects['file']}").json()["urls"]["get"]
    mine = alice.post(
        "/v1/models/acct/read/predictions", json={"input": {"f": url}}, headers={"Prefer": "wait"}
    ).json()
    assert mine["output"] == "alice's file"
    theirs = bob.post("/v1/models/acct/read/predictions", json={"input": {"f": url}}).json()
    row = server.wait_for_status(theirs["id"])
    assert row["status"] == "failed" and "alice's file" not in str(row["output"])


def test_plain_tokens_are_one_account(server: LocalServer) -> None:
    with client(server, "r8_plain_one") as one, client(server, "r8_plain_two") as two:
        p = one.post(
            "/v1/models/local-demo/sleep/predictions", json={"input": {"seconds": 0}}
        ).json()
        assert two.get(f"/v1/predictions/{p['id']}").status_code == 200


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_client_sees_only_its_account(
    server: LocalServer, objects: dict[str, Any], mode: str
) -> None:
    c = replicate.Client(api_token="r8_bob", base_url=server.base_url)
    with pytest.raises(ReplicateError) as info:
        if mode == "sync":
            c.predictions.get(objects["prediction"])
        else:
            await c.predictions.async_get(objects["prediction"])
    assert info.value.status == 404


def test_split_token() -> None:
    assert split_token("alice=r8_x") == ("alice", "r8_x")
    assert split_token("r8_x") == (None, "r8_x")
    assert split_token("r8_abc==") == (None, "r8_abc==")  # not a NAME: a plain token
    assert split_token("Alice=x") == (None, "Alice=x")
    assert split_token("alice=") == (None, "alice=")
