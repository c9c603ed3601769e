"""The registry's cache of models and versions: every change is seen at once.

Lookups of models and versions are answered from memory while their tables are unchanged
(``Registry._cached``). These tests change them through each kind of writer (the
HTTP API, ``register``, a rolled back transaction, a second SQLite connection and a second
server on the same file) right after a lookup has filled the cache, and check that the next
lookup sees the change.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from replicate.local import registry_changes
from replicate.local.registry import Registry
from replicate.local.server import LocalServer
from replicate.local.store import Store

from .conftest import AUTH
from .helpers import unique


@pytest.fixture(autouse=True)
def _exact(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Other processes' changes looked for at every commit (the server does so at most every
    ``RECHECK_SECONDS``), so that these tests see them at the next lookup."""
    if "paced" not in request.keywords:
        monkeypatch.setattr(registry_changes, "RECHECK_SECONDS", 0.0)


def echo(text: str) -> str:
    return text


def shout(text: str) -> str:
    return text.upper()


def _wait_create(http: httpx.Client, model: str) -> httpx.Response:
    return http.post(
        f"/v1/models/{model}/predictions",
        json={"input": {"text": "hi"}},
        headers={"Prefer": "wait"},
    )


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[LocalServer]:
    """A server whose database is a file, which other connections can write too."""
    with LocalServer(db=str(tmp_path / "shared.sqlite"), demo_models=False) as s:
        yield s


def _registry(server: LocalServer) -> Registry:
    assert server.core is not None
    return server.core.registry


# ------------------------------------------------------------------ through the HTTP API


def test_model_update_and_delete_are_seen_at_once(http: httpx.Client) -> None:
    name = unique("x").split("/")[1]
    body = {"owner": "local", "name": name, "visibility": "private", "hardware": "cpu"}
    assert http.get(f"/v1/models/local/{name}").status_code == 404  # a cached "no such model"
    assert http.post("/v1/models", json=body).status_code == 201
    assert http.get(f"/v1/models/local/{name}").json()["description"] is None
    u = http.patch(f"/v1/models/local/{name}", json={"description": "changed"})
    assert u.status_code == 200 and u.json()["description"] == "changed"
    assert http.get(f"/v1/models/local/{name}").json()["description"] == "changed"
    assert http.delete(f"/v1/models/local/{name}").status_code == 204
    assert http.get(f"/v1/models/local/{name}").status_code == 404
    assert _wait_create(http, f"local/{name}").status_code == 404


def test_reset_removes_user_models_at_once(fresh: LocalServer) -> None:
    with httpx.Client(base_url=fresh.base_url, headers=AUTH) as http:
        name = unique("x").split("/")[1]
        body = {"owner": "local", "name": name, "visibility": "public", "hardware": "cpu"}
        assert http.post("/v1/models", json=body).status_code == 201
        assert http.get(f"/v1/models/local/{name}").status_code == 200
        hello = http.get("/v1/models/replicate/hello-world").json()["latest_version"]["id"]
        fresh.reset()
        assert http.get(f"/v1/models/local/{name}").status_code == 404
        assert http.get("/v1/models/replicate/hello-world").json()["latest_version"]["id"] == hello


def test_visibility_change_is_seen_at_once(server: LocalServer, http: httpx.Client) -> None:
    name = unique("someone-else")
    server.register(name, echo, visibility="public")
    assert http.get(f"/v1/models/{name}").status_code == 200
    assert _wait_create(http, name).status_code == 201
    server.register(name, echo, visibility="private")
    assert http.get(f"/v1/models/{name}").status_code == 404
    assert _wait_create(http, name).status_code == 404


def test_new_version_becomes_latest_and_version_delete(
    server: LocalServer, http: httpx.Client
) -> None:
    name = unique()
    v1 = server.register(name, echo)
    assert _wait_create(http, name).json()["version"] == v1
    assert http.get(f"/v1/models/{name}").json()["latest_version"]["id"] == v1
    v2 = server.register(name, shout)
    assert v2 != v1
    created = _wait_create(http, name).json()
    assert created["version"] == v2 and created["output"] == "HI"
    assert http.get(f"/v1/models/{name}").json()["latest_version"]["id"] == v2
    assert [v["id"] for v in http.get(f"/v1/models/{name}/versions").json()["results"]] == [v2, v1]
    assert http.get(f"/v1/models/{name}/versions/{v2}").status_code == 200
    assert http.delete(f"/v1/models/{name}/versions/{v2}").status_code == 202
    assert http.get(f"/v1/models/{name}/versions/{v2}").status_code == 404
    assert http.get(f"/v1/models/{name}").json()["latest_version"]["id"] == v1
    assert [v["id"] for v in http.get(f"/v1/models/{name}/versions").json()["results"]] == [v1]
    assert _wait_create(http, name).json()["version"] == v1
    by_id = http.post("/v1/predictions", json={"version": v2, "input": {"text": "hi"}})
    assert by_id.status_code == 422


# ------------------------------------------------------------------ in the registry


def test_a_callers_change_to_a_returned_row_does_not_reach_the_next_lookup(
    server: LocalServer,
) -> None:
    name = unique()
    vid = server.register(name, echo, description="kept")
    owner, model = name.split("/")
    reg = _registry(server)
    m = reg.get_model(owner, model)
    assert m is not None
    m["description"] = "poisoned"
    m["visibility"] = "private"
    assert reg.get_model(owner, model) == {**m, "description": "kept", "visibility": "public"}
    for row in (reg.get_version(vid), reg.latest_version(owner, model), reg.resolve(name)):
        assert row is not None
        row["id"] = "poisoned"
        row.pop("owner")
    rows = reg.list_versions(owner, model)
    rows[0]["id"] = "poisoned"
    rows.clear()
    for again in (reg.get_version(vid), reg.latest_version(owner, model), reg.resolve(name)):
        assert again is not None and again["id"] == vid and again["owner"] == owner
    assert [r["id"] for r in reg.list_versions(owner, model)] == [vid]


def test_lookups_are_answered_from_memory_until_the_registry_changes(tmp_path: Path) -> None:
    db = str(tmp_path / "db.sqlite")
    store = Store(db)
    reg = Registry(store, lambda: 1000.0)
    vid = reg.register("o/m", echo)
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        for i in range(3):
            assert reg.get_model("o", "m") is not None
            assert reg.resolve("o/m") is not None and reg.resolve(f"o/m:{vid}") is not None
            assert reg.list_versions("o", "m") != []
            # Commits that leave models and versions alone, here and elsewhere, do not count.
            store.set_setting("unrelated", str(i))
            other.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('x', ?)", (i,))
        reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
        assert len(reads) == 4  # one per kind of lookup, then none
        store.execute("UPDATE models SET description = 'new' WHERE owner = 'o'")
        m = reg.get_model("o", "m")
        assert m is not None and m["description"] == "new"
    finally:
        other.close()
        store.close()


def test_a_rolled_back_change_read_inside_its_transaction_is_forgotten() -> None:
    store = Store(":memory:")
    reg = Registry(store, lambda: 1000.0)
    reg.register("o/m", echo, description="before")
    with pytest.raises(RuntimeError), store.transaction():
        store.execute("UPDATE models SET description = 'undone' WHERE owner = 'o'")
        m = reg.get_model("o", "m")
        assert m is not None and m["description"] == "undone"
        raise RuntimeError
    m = reg.get_model("o", "m")
    assert m is not None and m["description"] == "before"


# ------------------------------------------------------------------ other connections


@pytest.mark.parametrize("wal_index", [True, False], ids=["wal-index", "counter-only"])
def test_writes_of_a_second_connection_are_seen(file_server: LocalServer, wal_index: bool) -> None:
    name = unique()
    owner, model = name.split("/")
    v1 = file_server.register(name, echo)
    reg = _registry(file_server)
    changes = reg.store.registry_changes
    assert changes._wal_index is not None
    if not wal_index:  # as in a journal mode without one: the counter is read every time
        changes._wal_index.close()
        changes._wal_index = None
    assert reg.get_model(owner, model)["description"] is None  # type: ignore[index]
    assert reg.resolve(name)["id"] == v1  # type: ignore[index]
    other = sqlite3.connect(file_server.config.db, isolation_level=None)
    try:
        other.execute(
            "UPDATE models SET description = 'elsewhere' WHERE owner = ? AND name = ?",
            (owner, model),
        )
        assert reg.get_model(owner, model)["description"] == "elsewhere"  # type: ignore[index]
        v2 = "f" * 64
        other.execute(
            "INSERT INTO versions (id, owner, name, created_at, cog_version, openapi_schema) "
            "SELECT ?, owner, name, created_at + 1, cog_version, openapi_schema FROM versions "
            "WHERE id = ?",
            (v2, v1),
        )
        assert reg.resolve(name)["id"] == v2  # type: ignore[index]
        assert [v["id"] for v in reg.list_versions(owner, model)] == [v2, v1]
        other.execute("DELETE FROM versions WHERE id = ?", (v2,))
        assert reg.get_version(v2) is None
        assert reg.latest_version(owner, model)["id"] == v1  # type: ignore[index]
        other.execute("DELETE FROM models WHERE owner = ? AND name = ?", (owner, model))
        assert reg.get_model(owner, model) is None
    finally:
        other.close()


def _traced(tmp_path: Path) -> tuple[Store, Registry, list[str], sqlite3.Connection]:
    """A file store whose registry serves ``o/m``; the statements of the connection that
    reads the counter of committed changes; another connection to the same file."""
    db = str(tmp_path / "db.sqlite")
    store = Store(db)
    reg = Registry(store, lambda: 1000.0)
    reg.register("o/m", echo)
    reader = store.registry_changes._reader
    assert reader is not None
    counts: list[str] = []
    reader.set_trace_callback(counts.append)
    return store, reg, counts, sqlite3.connect(db, isolation_level=None)


def test_the_counter_is_read_again_only_after_a_commit(tmp_path: Path) -> None:
    store, reg, counts, other = _traced(tmp_path)
    try:
        for _ in range(5):
            assert reg.get_model("o", "m") is not None
        assert len(counts) == 1
        other.execute("INSERT INTO settings (key, value) VALUES ('unrelated', '1')")
        for _ in range(5):
            assert reg.get_model("o", "m") is not None
        assert len(counts) == 2  # read again once, still the same count: the row is kept
        other.execute("UPDATE models SET description = 'elsewhere'")
        m = reg.get_model("o", "m")
        assert m is not None and m["description"] == "elsewhere" and len(counts) == 3
    finally:
        other.close()
        store.close()


def test_a_second_server_on_the_same_file_is_seen(file_server: LocalServer) -> None:
    name = unique()
    with (
        LocalServer(db=file_server.config.db, demo_models=False) as second,
        httpx.Client(base_url=file_server.base_url, headers=AUTH) as http,
    ):
        assert http.get(f"/v1/models/{name}").status_code == 404
        vid = second.register(name, echo, description="from the second server")
        got = http.get(f"/v1/models/{name}").json()
        assert got["description"] == "from the second server"
        assert got["latest_version"]["id"] == vid
        second.register(name, echo, description="updated", visibility="private")
        assert http.get(f"/v1/models/{name}").status_code == 404


@pytest.mark.paced
def test_other_processes_changes_are_looked_for_at_most_every_recheck_interval(
    tmp_path: Path,
) -> None:
    store, reg, counts, other = _traced(tmp_path)
    try:
        assert reg.get_model("o", "m") is not None
        # This server's own commits (one per prediction under load) do not each make it
        # read the counter again.
        for i in range(50):
            store.execute("INSERT INTO settings (key, value) VALUES (?, '1')", (f"k{i}",))
            assert reg.get_model("o", "m") is not None
        assert len(counts) <= 10
        # Another process's change is seen once the interval has passed (waited on as a
        # state, bounded).
        other.execute("UPDATE models SET description = 'elsewhere'")
        seen = None
        for _ in range(2000):
            seen = reg.get_model("o", "m")
            if seen is not None and seen["description"] == "elsewhere":
                break
            threading.Event().wait(0.01)
        assert seen is not None and seen["description"] == "elsewhere"
    finally:
        other.close()
        store.close()
