"""Recording parity: every real exchange in ``tests/data/recordings`` replayed against the local server.

One test per recorded interaction (``<recording>#<index>``). The request is replayed with names
mapped to local objects: any model -> ``replicate/hello-world`` (or a fresh model without
versions when the recording's model had none), version ids -> the mapped model's version, ids of
predictions, trainings and files -> objects created locally first, model input -> valid input
for the mapped model. Request headers that matter (``Prefer``, ``Cancel-After``, the content
type) are kept. Then the local response must match the recorded one in:

* the status code;
* the media type of ``Content-Type``;
* the presence of ``Preference-Applied`` and of ``ratelimit-remaining``/``ratelimit-reset``;
* the JSON shape: every recorded key is present, with the same JSON type (``null`` on either side
  matches anything: nullable fields; integers and floats are both numbers). Keys the local server
  adds must be declared by the official spec for that response, or be returned by the real API
  in another recording of the same kind of object (the API grew between the 2023 and 2024
  recordings). Model-specific payloads (``input``, ``output``, ``openapi_schema``) are opaque;
  lists are compared through their first elements.

Accepted deviations are named tolerances in ``allowlist.py``; real bugs are BUG entries there
(xfail strict).
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from replicate.local.server import LocalServer

from .allowlist import PARITY_BUGS, tolerated
from .conftest import AUTH, RECORDINGS_DIR, SPEC_PATH, mounted_paths

HELLO = "replicate/hello-world"
HELLO_VERSION = "9dcd6d78e7c6560c340d916fe32e9f24aabfa331e5cce95fe31f77fb03121426"
TRAINABLE = "local-demo/hello-trainable"
USERNAME = "local"
TRAIN_INPUT = {"greeting": "howdy"}
STREAMER = "local-demo/stream-text"
STREAM_INPUT = {"prompt": "parity test", "max_tokens": 3, "delay_ms": 0}
RATELIMIT = ("ratelimit-remaining", "ratelimit-reset")
#: Subtrees whose content depends on the model, not on the API.
OPAQUE_KEYS = {"input", "output", "openapi_schema"}


# ---------------------------------------------------------------------------- recordings


@dataclass(frozen=True)
class Exchange:
    """One recorded request and response (bodies decoded)."""

    method: str
    uri: str
    body: bytes
    request_headers: dict[str, str]
    status: int
    headers: dict[str, str]
    content: bytes

    @property
    def path(self) -> str:
        """The path relative to ``/v1`` (or the full path for non-API hosts)."""
        parts = urllib.parse.urlsplit(self.uri)
        return parts.path[3:] if parts.path.startswith("/v1/") else parts.path

    def json(self) -> Any:
        try:
            return json.loads(self.content)
        except ValueError:
            return None


def _as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _headers(raw: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, values in (raw or {}).items():
        vals = values if isinstance(values, list) else [values]
        out[str(key).lower()] = ", ".join(str(v) for v in vals)
    return out


@functools.cache
def load(name: str) -> tuple[Exchange, ...]:
    """The exchanges of one recording file (both VCR response shapes)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(RECORDINGS_DIR / name, encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=loader)
    out = []
    for item in data["interactions"]:
        req, resp = item["request"], item["response"]
        if "status_code" in resp:
            status, content = int(resp["status_code"]), _as_bytes(resp.get("content"))
        else:
            status = int(resp["status"]["code"])
            content = _as_bytes((resp.get("body") or {}).get("string"))
        headers = _headers(resp.get("headers"))
        if "gzip" in headers.get("content-encoding", "") and content[:2] == b"\x1f\x8b":
            content = gzip.decompress(content)
        out.append(
            Exchange(
                method=str(req["method"]).upper(),
                uri=str(req["uri"]),
                body=_as_bytes(req.get("body")),
                request_headers=_headers(req.get("headers")),
                status=status,
                headers=headers,
                content=content,
            )
        )
    return tuple(out)


def _params() -> list[Any]:
    params = []
    for path in sorted(RECORDINGS_DIR.glob("*.yaml")):
        for index in range(len(load(path.name))):
            params.append(pytest.param(path.name, index, id=f"{path.stem}#{index}"))
    return params


PARAMS = _params()
# The recordings ship with the repository: their absence is a broken checkout, not a skip.
assert PARAMS, f"no recordings found in {RECORDINGS_DIR}"


# ---------------------------------------------------------------------------- the spec


@functools.lru_cache(maxsize=1)
def _spec() -> dict[str, Any] | None:
    if not SPEC_PATH.is_file():
        return None
    return dict(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


def _resolve(node: Any) -> Any:
    spec = _spec()
    while isinstance(node, dict) and "$ref" in node and spec is not None:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _response_schema(method: str, path: str, status: int) -> Any:
    """The spec's JSON schema for a response (None when the spec or the operation is unknown)."""
    spec = _spec()
    if spec is None:
        return None
    for template, ops in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in ops:
            responses = ops[method.lower()].get("responses", {})
            resp = _resolve(responses.get(str(status)) or responses.get("default"))
            content = (resp or {}).get("content", {})
            for media in content.values():
                return _resolve(media.get("schema"))
    return None


def _prediction_schema() -> Any:
    spec = _spec()
    return None if spec is None else spec["components"]["schemas"]["schemas_prediction_response"]


def _properties(node: Any) -> set[str] | None:
    """Properties a schema node declares (through anyOf/oneOf/allOf); None: unknown/any."""
    node = _resolve(node)
    if not isinstance(node, dict):
        return None
    props: set[str] = set(node.get("properties", {}))
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key, []):
            more = _properties(sub)
            if more:
                props |= more
    return props or None


def _child(node: Any, key: str | None) -> Any:
    """The schema of property ``key`` (or of list items when ``key`` is None)."""
    node = _resolve(node)
    if not isinstance(node, dict):
        return None
    if key is None and "items" in node:
        return node["items"]
    if key is not None and key in node.get("properties", {}):
        return node["properties"][key]
    for comb in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(comb, []):
            found = _child(sub, key)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------------------- shape comparison


def _child_for(schema: Any, key: str) -> Any:
    if key == "default_example" and tolerated("default-example-is-a-prediction"):
        return _prediction_schema()
    return _child(schema, key)


@functools.lru_cache(maxsize=1)
def _seen_keys() -> dict[int, set[str]]:
    """Keys the real API returned, per spec schema node, across all recordings.

    Recordings span 2023-2024 and the API grew in between: a key the local server sends that an
    older recording lacks is fine when a newer recording of the same kind of object has it.
    """
    seen: dict[int, set[str]] = {}

    def walk(value: Any, schema: Any) -> None:
        node = _resolve(schema)
        if node is None:
            return
        if isinstance(value, dict):
            seen.setdefault(id(node), set()).update(value)
            for key, sub in value.items():
                if key not in OPAQUE_KEYS:
                    walk(sub, _child_for(node, key))
        elif isinstance(value, list) and value:
            walk(value[0], _child(node, None))

    for param in PARAMS:
        name, index = param.values
        ex = load(str(name))[int(index)]
        if not _media_type(ex.headers.get("content-type")).endswith("json"):
            continue
        walk(ex.json(), _response_schema(ex.method, ex.path, ex.status))
    return seen


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


#: Metrics every prediction has; others (token counts...) depend on the model.
GENERIC_METRICS = {"predict_time", "total_time"}


def _missing_is_tolerated(path: str, key: str, recorded: Any, declared: set[str] | None) -> bool:
    if (
        path.endswith(".metrics")
        and key not in GENERIC_METRICS
        and tolerated("model-specific-metrics")
    ):
        return True
    return (
        recorded is None
        and (declared is None or key not in declared)
        and tolerated("dropped-from-api")
    )


def shape_diff(recorded: Any, local: Any, schema: Any, path: str = "$") -> list[str]:
    """Differences in key sets and JSON types between a recorded and a local JSON value."""
    rk, lk = _kind(recorded), _kind(local)
    if rk == "null" or lk == "null":
        return []  # nullable: the value is absent in one of the two states
    if rk != lk:
        return [f"{path}: type {lk} locally, {rk} in the recording"]
    problems: list[str] = []
    if rk == "object":
        declared = _properties(schema)
        for key in sorted(set(recorded) - set(local)):
            if not _missing_is_tolerated(path, key, recorded[key], declared):
                problems.append(f"{path}.{key}: missing locally")
        seen = _seen_keys().get(id(_resolve(schema)), set())
        for key in sorted(set(local) - set(recorded)):
            if declared is not None and key in declared:
                continue  # the current spec declares it (the API grew since the recording)
            if key in seen:
                continue  # a newer recording of the same kind of object has it
            problems.append(
                f"{path}.{key}: extra locally, not in the spec nor in any recording of this object"
            )
        for key in sorted(set(recorded) & set(local)):
            if key in OPAQUE_KEYS:
                continue
            child = _child_for(schema, key)
            problems += shape_diff(recorded[key], local[key], child, f"{path}.{key}")
    elif rk == "array" and recorded and local:
        problems += shape_diff(recorded[0], local[0], _child(schema, None), f"{path}[0]")
    return problems


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


# ---------------------------------------------------------------------------- replay


def _streams(recorded: Any) -> bool:
    """Whether a recorded prediction came from a model with streaming output."""
    return isinstance(recorded, dict) and "stream" in (recorded.get("urls") or {})


class Replayer:
    """Maps a recorded request onto local objects and sends it."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url + "/v1", headers=AUTH, timeout=60)
        self.mounted = mounted_paths(server)
        self._n = 0

    def close(self) -> None:
        self.http.close()

    def require(self, template: str) -> None:
        """Skip while the route of ``template`` (``/v1``-relative) is not mounted yet."""
        norm = "/v1" + re.sub(r"\{[^}]+\}", "{}", template)
        if self.mounted and norm not in {re.sub(r"\{[^}]+\}", "{}", p) for p in self.mounted}:
            pytest.skip(f"{template} is not mounted on the local server yet")

    def unique(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-{self._n}"

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code < 300, (
            f"setup {response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
        return response.json() if response.content else None

    # -- local objects
    def new_model(self) -> str:
        name = self.unique("parity-model")
        body = {"owner": USERNAME, "name": name, "visibility": "private", "hardware": "cpu"}
        self.ok(self.http.post("/models", json=body))
        return f"{USERNAME}/{name}"

    def prediction(self, status: str | None, *, streaming: bool = False) -> str:
        """A local prediction like the recorded one: finished or running, streaming or not."""
        running = status in ("starting", "processing")
        if streaming:
            model, data = STREAMER, dict(STREAM_INPUT, delay_ms=1000 if running else 0)
        elif running:
            model, data = "local-demo/sleep", {"seconds": 30}
        else:
            model, data = HELLO, {"text": "parity"}
        headers = {} if running else {"Prefer": "wait"}
        body = {"version": model, "input": data}
        return str(self.ok(self.http.post("/predictions", json=body, headers=headers))["id"])

    def trainable_version(self) -> str:
        model = self.ok(self.http.get(f"/models/{TRAINABLE}"))
        return str(model["latest_version"]["id"])

    def training(self) -> str:
        self.require("/trainings/{training_id}")
        body = {"destination": self.new_model(), "input": dict(TRAIN_INPUT)}
        path = f"/models/{TRAINABLE}/versions/{self.trainable_version()}/trainings"
        return str(self.ok(self.http.post(path, json=body))["id"])

    def upload(self) -> str:
        files = {"content": ("parity.txt", b"", "text/plain")}
        return str(self.ok(self.http.post("/files", files=files))["id"])

    def local_next_page(self, path: str) -> str:
        """The ``next`` URL of the local list at ``path`` (two items, pages of one)."""
        kind = path.strip("/")
        make = {"predictions": lambda: self.prediction("succeeded"), "files": self.upload}
        if kind not in make:
            pytest.fail(f"no local mapping for a cursor page of {path}")
        for _ in range(2):
            make[kind]()
        sizes = dict(self.server.limits()["page_sizes"])
        self.server.set_limits(page_sizes={kind: 1})
        try:
            first = self.ok(self.http.get(path))
        finally:
            self.server.set_limits(page_sizes={kind: sizes[kind]})
        assert first["next"], first
        return str(first["next"])

    def cleanup(self, response: httpx.Response) -> None:
        """Cancel what a replayed create left running."""
        try:
            data = response.json()
        except ValueError:
            return
        if isinstance(data, dict) and data.get("status") in ("starting", "processing"):
            kind = "trainings" if "/trainings/" in str(data.get("urls", {})) else "predictions"
            self.http.post(f"/{kind}/{data['id']}/cancel")

    # -- the mapping
    @staticmethod
    def model_for(recorded: Any) -> tuple[str, dict[str, Any]]:
        """The local model (and valid input) for a recorded prediction: streaming or not."""
        if _streams(recorded):
            return STREAMER, dict(STREAM_INPUT)
        return HELLO, {"text": "parity"}

    def send(self, ex: Exchange) -> httpx.Response:
        headers = {
            k: v
            for k, v in ex.request_headers.items()
            if k in ("prefer", "cancel-after", "content-type")
        }
        recorded = ex.json()
        path, method = ex.path, ex.method
        host = urllib.parse.urlsplit(ex.uri).hostname
        if host != "api.replicate.com":
            return self.send_delivery(ex)
        body: Any = None

        if ex.status == 401:
            # The recording was made with a rejected token: replay with one the server rejects.
            headers["Authorization"] = "Bearer r8_not_the_configured_token"
            return self.http.request(method, path, content=ex.body, headers=headers)
        if method == "GET" and "cursor" in urllib.parse.parse_qs(
            urllib.parse.urlsplit(ex.uri).query
        ):
            # A recorded cursor is the real API's own: follow the local list's `next` instead.
            return self.http.get(self.local_next_page(path), headers=headers)
        m = re.fullmatch(r"/collections/([^/]+)", path)
        if m:
            self.require("/collections/{collection_slug}")
            page = self.ok(self.http.get("/collections"))
            path = f"/collections/{page['results'][0]['slug']}"
        elif path == "/collections":
            self.require("/collections")
        elif path == "/files" and method == "POST":
            headers.pop("content-type", None)
            files = {"content": ("parity.txt", b"", "text/plain")}
            return self.http.post("/files", files=files, headers=headers)
        elif re.fullmatch(r"/files/[^/]+", path):
            path = f"/files/{self.upload()}"
        elif path == "/models" and method == "POST":
            body = json.loads(ex.body)
            body.update(owner=USERNAME, name=self.unique("parity-created"))
        elif path == "/models" and method == "QUERY":
            # Find a model of the same kind as the first recorded hit (streaming or not).
            first = (recorded or {}).get("results", [{}])[0] if isinstance(recorded, dict) else {}
            text = b"stream-text" if _streams(first.get("default_example")) else b"hello"
            return self.http.request("QUERY", "/models", content=text, headers=headers)
        elif re.fullmatch(r"/models/[^/]+/[^/]+", path):
            empty = isinstance(recorded, dict) and recorded.get("latest_version") is None
            path = f"/models/{self.new_model() if empty else HELLO}"
        elif re.fullmatch(r"/models/[^/]+/[^/]+/versions/[^/]+", path):
            path = f"/models/{HELLO}/versions/{HELLO_VERSION}"
        elif re.fullmatch(r"/models/[^/]+/[^/]+/versions/[^/]+/trainings", path):
            self.require("/models/{owner}/{name}/versions/{version_id}/trainings")
            body = json.loads(ex.body)
            body["input"] = dict(TRAIN_INPUT)
            if ex.status == 404:  # the recorded destination did not exist
                body["destination"] = f"{USERNAME}/{self.unique('parity-missing')}"
            else:
                body["destination"] = self.new_model()
            path = f"/models/{TRAINABLE}/versions/{self.trainable_version()}/trainings"
        elif re.fullmatch(r"/models/[^/]+/[^/]+/predictions", path):
            body = json.loads(ex.body)
            model, body["input"] = self.model_for(recorded)
            path = f"/models/{model}/predictions"
        elif path == "/predictions" and method == "POST":
            body = json.loads(ex.body)
            model, body["input"] = self.model_for(recorded)
            body["version"] = HELLO_VERSION if model == HELLO else model
        elif re.fullmatch(r"/predictions/[^/]+/cancel", path):
            pred = self.prediction("processing", streaming=_streams(recorded))
            path = f"/predictions/{pred}/cancel"
        elif re.fullmatch(r"/predictions/[^/]+", path):
            status = recorded.get("status") if isinstance(recorded, dict) else None
            path = f"/predictions/{self.prediction(status, streaming=_streams(recorded))}"
        elif re.fullmatch(r"/trainings/[^/]+/cancel", path):
            path = f"/trainings/{self.training()}/cancel"
        elif re.fullmatch(r"/trainings/[^/]+", path):
            path = f"/trainings/{self.training()}"
        if body is not None:
            headers.pop("content-type", None)
            return self.http.request(method, path, json=body, headers=headers)
        query = urllib.parse.urlsplit(ex.uri).query
        url = f"{path}?{query}" if query else path
        return self.http.request(method, url, content=ex.body or None, headers=headers)

    def send_delivery(self, ex: Exchange) -> httpx.Response:
        """An output file download: fetch a local ``make-file`` PNG output the same way."""
        body = {"version": "local-demo/make-file", "input": {"text": "x", "format": "png"}}
        pred = self.ok(self.http.post("/predictions", json=body, headers={"Prefer": "wait"}))
        output = pred["output"]
        url = output[0] if isinstance(output, list) else output
        assert isinstance(url, str) and url.startswith("http"), pred
        with httpx.Client(timeout=60) as plain:  # delivery URLs need no token
            return plain.get(url)


@pytest.fixture(scope="module")
def replayer(server: LocalServer) -> Iterator[Replayer]:
    rep = Replayer(server)
    yield rep
    rep.close()


# ---------------------------------------------------------------------------- the test


def known_bug(ex: Exchange, problem: str) -> str | None:
    """The id of the PARITY_BUGS entry a difference line belongs to, if any."""
    for bug_id, bug in PARITY_BUGS.items():
        if re.search(bug.uri, ex.uri) and re.search(bug.problem, problem):
            return bug_id
    return None


def differences(ex: Exchange, resp: httpx.Response, *, set_aside_bugs: bool = True) -> list[str]:
    """Everything that differs between a recorded and a local response (tolerances applied).

    With ``set_aside_bugs``, differences that are known bugs (``PARITY_BUGS``) are left out;
    each is pinned by its own ``test_parity_bug`` instead.
    """
    problems = _differences(ex, resp)
    if set_aside_bugs:
        problems = [p for p in problems if known_bug(ex, p) is None]
    return problems


def _differences(ex: Exchange, resp: httpx.Response) -> list[str]:
    problems: list[str] = []
    if resp.status_code != ex.status:
        problems.append(f"status {resp.status_code} locally, {ex.status} recorded")
    rec_type, loc_type = ex.headers.get("content-type"), resp.headers.get("content-type")
    if _media_type(rec_type) != _media_type(loc_type) and not (
        # text/plain on a 204 says nothing: there is no body either way.
        ex.status == 204 and resp.status_code == 204 and tolerated("no-content-type-on-204")
    ):
        problems.append(f"content-type {loc_type!r} locally, {rec_type!r} recorded")
    rec_pa = "preference-applied" in ex.headers
    loc_pa = "preference-applied" in resp.headers
    if rec_pa != loc_pa:
        problems.append(f"Preference-Applied present locally: {loc_pa}, recorded: {rec_pa}")
    for name in RATELIMIT:
        rec_rl, loc_rl = name in ex.headers, name in resp.headers
        if rec_rl and not loc_rl:
            problems.append(f"{name} missing locally")
        elif loc_rl and not rec_rl and not tolerated("ratelimit-on-every-reply"):
            problems.append(f"{name} sent locally but not in the recording")
    recorded = ex.json() if _media_type(rec_type).endswith("json") else None
    if recorded is not None and resp.status_code == ex.status:
        try:
            local = resp.json()
        except ValueError:
            problems.append("local body is not JSON")
        else:
            schema = _response_schema(ex.method, ex.path, ex.status)
            problems += shape_diff(recorded, local, schema)
    return problems


@pytest.mark.parametrize(("recording", "index"), PARAMS)
def test_recorded_exchange(recording: str, index: int, replayer: Replayer) -> None:
    """The local server answers the recorded request like the real API did (shape-wise)."""
    ex = load(recording)[index]
    response = replayer.send(ex)
    try:
        problems = differences(ex, response)
    finally:
        replayer.cleanup(response)
    assert not problems, (
        f"{ex.method} {ex.uri} -> local {response.request.method} {response.request.url}:\n  "
        + "\n  ".join(problems)
    )


@pytest.mark.parametrize("bug_id", sorted(PARITY_BUGS))
def test_parity_bug(bug_id: str, replayer: Replayer) -> None:
    """A known parity bug (allow-list BUG entry) is still there: xfail(strict) until fixed."""
    bug = PARITY_BUGS[bug_id]
    recording, index = bug.example.rsplit("#", 1)
    ex = load(recording)[int(index)]
    response = replayer.send(ex)
    try:
        problems = differences(ex, response, set_aside_bugs=False)
    finally:
        replayer.cleanup(response)
    assert not [p for p in problems if known_bug(ex, p) == bug_id], problems


def test_recordings_are_found() -> None:
    """The shared recordings exist where CI puts them (else the module would be skipped)."""
    assert Path(RECORDINGS_DIR).is_dir()
    assert len(PARAMS) >= 30


# ---------------------------------------------------------------------------- the checks can fail


def _fake(ex: Exchange, status: int, body: Any, headers: dict[str, str]) -> httpx.Response:
    request = httpx.Request(ex.method, "http://127.0.0.1/v1" + ex.path)
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_differences_catch_each_kind_of_mismatch() -> None:
    """The comparator reports status, content type, headers, missing keys and type changes."""
    ex = load("predictions-get.yaml")[0]
    recorded = ex.json()
    good_headers = {"content-type": "application/json", **dict.fromkeys(RATELIMIT, "1")}
    same = _fake(ex, 200, recorded, good_headers)
    assert differences(ex, same) == []

    body = dict(recorded)
    del body["status"]
    body["logs"] = 5
    problems = differences(ex, _fake(ex, 201, body, {"content-type": "text/html"}))
    assert any(p.startswith("status 201") for p in problems)
    assert any(p.startswith("content-type") for p in problems)
    assert any("ratelimit-remaining missing" in p for p in problems)
    problems = differences(ex, _fake(ex, 200, body, good_headers))
    assert "$.status: missing locally" in problems
    assert "$.logs: type number locally, string in the recording" in problems
    body = dict(recorded, surprise=1)
    problems = differences(ex, _fake(ex, 200, body, good_headers))
    assert problems == [
        "$.surprise: extra locally, not in the spec nor in any recording of this object"
    ]
