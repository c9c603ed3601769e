"""Schemathesis against the live local server, driven by the official OpenAPI spec.

Every operation of ``tests/data/openapi.json`` is exercised over real sockets with a
Bearer token (including ``QUERY /models``, which Schemathesis sends as is, and the signed
``files.download``):

* ``test_operation_conforms``: positive cases; every response goes through the built-in checks
  (no server errors, status code, content type, response schema and response headers
  conformance) plus ``ignored_auth`` (a request without or with a wrong token is refused).
* ``test_operation_rejects_invalid_requests``: negative cases (invalid per the spec); never a
  5xx, and every 4xx is RFC 7807 problem+json with ``detail`` and ``status`` (docs/local-server.md, "Auth and errors").
* ``test_stateful_links``: link-following sequences (create -> get -> cancel for predictions,
  upload -> get -> delete for files; the links are added in memory, the official spec has
  none) with ``use_after_free`` and ``ensure_resource_availability`` on top; it asserts the
  sequences really chained ids from earlier responses.

Generation is deterministic (``derandomize``, Schemathesis ``deterministic``, no example
database, no shrinking), bounded by ``MAX_EXAMPLES`` plus Schemathesis's explicit
examples/coverage cases (about 1,300 requests for the file). Generated values reach the server as
generated, except where a value must name something that exists for the call to mean anything:
``fix_case`` then substitutes real ids (a live prediction, an uploaded file, a fresh model...), a
runnable version with valid model input, and a signed download URL. Every other adjustment of
cases or of the spec is a named tolerance of ``allowlist.py`` (``tolerated(...)``), so nothing
is loosened silently. Predictions a case leaves running are canceled at once.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import json
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

schemathesis = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (it is in the [dev] extra)"
)

from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from replicate.local.server import LocalServer  # noqa: E402

from .allowlist import tolerated  # noqa: E402
from .conftest import AUTH, SPEC_PATH, mounted_paths  # noqa: E402

# The spec ships with the repository (tests/data): its absence is a broken checkout, not a skip.
assert SPEC_PATH.is_file(), f"the official OpenAPI spec is missing: expected it at {SPEC_PATH}"

#: Examples per operation; with ~37 operations this keeps the file well under 3 minutes.
MAX_EXAMPLES = 6
#: Steps and scenarios of the stateful (link-following) test.
STATEFUL_EXAMPLES = 10
STATEFUL_STEPS = 6

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
]
#: Checks that look at earlier steps of a link-following sequence.
STATEFUL_CHECKS = [*CHECKS, use_after_free, ensure_resource_availability]

HELLO = "replicate/hello-world"
HELLO_VERSION = "9dcd6d78e7c6560c340d916fe32e9f24aabfa331e5cce95fe31f77fb03121426"
TRAINABLE = "local-demo/hello-trainable"
USERNAME = "local"
_DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+s?)?$")


# ---------------------------------------------------------------------------- the schema


def _link(operation_id: str, parameters: dict[str, str]) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters}


def _with_links(raw: dict[str, Any]) -> dict[str, Any]:
    """The spec plus the OpenAPI links the contract tests follow (the official spec has none).

    create -> get -> cancel for predictions (all three create routes), upload -> get -> delete
    (and download) for files. Added in memory; the spec file is never changed.
    """
    raw = copy.deepcopy(raw)
    paths = raw["paths"]
    prediction_links = {
        "GetPrediction": _link("predictions.get", {"prediction_id": "$response.body#/id"}),
        "CancelPrediction": _link("predictions.cancel", {"prediction_id": "$response.body#/id"}),
    }
    for path in (
        "/predictions",
        "/models/{model_owner}/{model_name}/predictions",
        "/deployments/{deployment_owner}/{deployment_name}/predictions",
    ):
        for code in ("201", "202"):
            paths[path]["post"]["responses"][code]["links"] = dict(prediction_links)
    paths["/predictions/{prediction_id}"]["get"]["responses"]["200"]["links"] = {
        "CancelPrediction": prediction_links["CancelPrediction"]
    }
    paths["/predictions/{prediction_id}/cancel"]["post"]["responses"]["200"]["links"] = {
        "GetPrediction": prediction_links["GetPrediction"]
    }
    file_links = {
        "GetFile": _link("files.get", {"file_id": "$response.body#/id"}),
        "DeleteFile": _link("files.delete", {"file_id": "$response.body#/id"}),
    }
    paths["/files"]["post"]["responses"]["201"]["links"] = dict(file_links)
    paths["/files/{file_id}"]["get"]["responses"]["200"]["links"] = {
        "DeleteFile": file_links["DeleteFile"]
    }
    return raw


def _amend(raw: dict[str, Any]) -> dict[str, Any]:
    """Reviewed corrections of the spec where the real API (recordings) contradicts it."""
    raw = copy.deepcopy(raw)
    if tolerated("training-unfinished-nulls"):
        props = raw["components"]["schemas"]["schemas_training_response"]["properties"]
        for key in ("output", "completed_at", "started_at", "logs"):
            props[key] = {"anyOf": [props[key], {"type": "null"}]}
    return raw


def _load_schema() -> Any:
    raw = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    schema = schemathesis.openapi.from_dict(_with_links(_amend(raw)))
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        no_shrink=True,
    )
    return schema


schema = _load_schema()
_RAW = json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _declared_properties(path: str, method: str) -> set[str] | None:
    """The JSON body properties the spec declares for an operation (None: not an object body)."""
    body = _RAW["paths"][path][method.lower()].get("requestBody", {})
    node = body.get("content", {}).get("application/json", {}).get("schema")
    if isinstance(node, dict) and "$ref" in node:
        node = _RAW["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if not isinstance(node, dict) or "properties" not in node:
        return None
    if node.get("additionalProperties") is False:
        return None  # the generator never adds extras here
    return set(node["properties"])


def _drop_undeclared(case: Any) -> None:
    declared = _declared_properties(case.operation.path, case.method)
    if declared is None or not isinstance(case.body, dict):
        return
    if tolerated("undeclared-body-properties"):
        case.body = {k: v for k, v in case.body.items() if k in declared}


HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


# ---------------------------------------------------------------------------- live resources


class Resources:
    """Creates the real objects that path parameters must name, through the public API."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url + "/v1", headers=AUTH, timeout=60)
        self.mounted = mounted_paths(server)
        self._n = itertools.count(1)
        self._cache: dict[str, Any] = {}

    def close(self) -> None:
        self.http.close()

    def forget(self) -> None:
        """Drop cached objects (after a server reset)."""
        self._cache.clear()

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self._n)}"

    def is_mounted(self, spec_path: str) -> bool:
        """Whether the app serves ``spec_path`` (a ``/v1``-relative template from the spec)."""
        if not self.mounted:
            return True  # cannot tell: assume yes, the checks will say
        template = "/v1" + re.sub(r"\{[^}]+\}", "{}", spec_path)
        return any(re.sub(r"\{[^}]+\}", "{}", p) == template for p in self.mounted)

    def _ok(self, response: httpx.Response) -> Any:
        assert response.status_code < 300, (
            f"setup call {response.request.method} {response.request.url.path} failed: "
            f"{response.status_code} {response.text[:500]}"
        )
        return response.json() if response.content else None

    def prediction(self) -> str:
        """A finished hello-world prediction (shared, read-only)."""
        if "prediction" not in self._cache:
            body = {"version": HELLO_VERSION, "input": {"text": "contract"}}
            pred = self._ok(self.http.post("/predictions", json=body, headers={"Prefer": "wait"}))
            self._cache["prediction"] = pred["id"]
        return str(self._cache["prediction"])

    def running_prediction(self) -> str:
        """A new prediction that would run for a while (each caller cancels it)."""
        body = {"version": "local-demo/sleep", "input": {"seconds": 30, "tick": 1}}
        return str(self._ok(self.http.post("/predictions", json=body))["id"])

    def shared_file(self) -> str:
        if "file" not in self._cache:
            self._cache["file"] = self.new_file()
        return str(self._cache["file"])

    def new_file(self) -> str:
        files = {"content": ("hello.txt", b"hello contract", "text/plain")}
        return str(self._ok(self.http.post("/files", files=files))["id"])

    def new_model(self) -> str:
        """A fresh private model of the caller with no versions: ``owner/name``."""
        name = self.unique("contract-model")
        body = {"owner": USERNAME, "name": name, "visibility": "private", "hardware": "cpu"}
        self._ok(self.http.post("/models", json=body))
        return f"{USERNAME}/{name}"

    def shared_model(self) -> str:
        if "model" not in self._cache:
            self._cache["model"] = self.new_model()
        return str(self._cache["model"])

    def new_version(self) -> tuple[str, str]:
        """A fresh registered model with one version (deletable): ``(owner/name, version)``."""
        name = f"{USERNAME}/{self.unique('contract-versioned')}"

        def echo(text: str = "x") -> str:
            return text

        return name, self.server.register(name, echo)

    def deployment(self) -> str:
        if "deployment" not in self._cache:
            self._cache["deployment"] = self.new_deployment()
        return str(self._cache["deployment"])

    def new_deployment(self) -> str:
        name = self.unique("contract-deployment")
        body = {
            "name": name,
            "model": HELLO,
            "version": HELLO_VERSION,
            "hardware": "cpu",
            "min_instances": 0,
            "max_instances": 1,
        }
        dep = self._ok(self.http.post("/deployments", json=body))
        return f"{dep.get('owner', USERNAME)}/{dep.get('name', name)}"

    def training(self) -> str:
        if "training" not in self._cache:
            trainable = self._ok(self.http.get(f"/models/{TRAINABLE}"))
            version = trainable["latest_version"]["id"]
            body = {"destination": self.new_model(), "input": {"greeting": "howdy"}}
            path = f"/models/{TRAINABLE}/versions/{version}/trainings"
            self._cache["training"] = self._ok(self.http.post(path, json=body))["id"]
        return str(self._cache["training"])

    def collection(self) -> str:
        if "collection" not in self._cache:
            page = self._ok(self.http.get("/collections"))
            self._cache["collection"] = page["results"][0]["slug"]
        return str(self._cache["collection"])


@pytest.fixture(scope="module")
def resources(server: LocalServer) -> Iterator[Resources]:
    res = Resources(server)
    yield res
    res.close()


# ---------------------------------------------------------------------------- case fix-ups


def _valid_input(generated: Any) -> dict[str, Any]:
    """Model input for hello-world: generated extra keys kept (they are ignored), ``text`` valid."""
    data = dict(generated) if isinstance(generated, dict) else {}
    if not isinstance(data.get("text"), str):
        data["text"] = "contract"
    return data


def _fix_prediction_body(body: Any, *, with_version: bool) -> dict[str, Any]:
    data = dict(body) if isinstance(body, dict) else {}
    data["input"] = _valid_input(data.get("input"))
    if with_version:
        data["version"] = HELLO_VERSION
    if tolerated("no-random-webhooks"):
        data.pop("webhook", None)
        data.pop("webhook_completed", None)
    return data


_URL_FIELDS = ("cover_image_url", "github_url", "license_url", "paper_url", "weights_url")


def _fix_url_fields(body: dict[str, Any]) -> None:
    """URL fields get URLs (tolerance url-fields-are-urls)."""
    if not tolerated("url-fields-are-urls"):
        return
    for key in _URL_FIELDS:
        value = body.get(key)
        if isinstance(value, str) and not re.match(r"^https?://[^\s/]+", value):
            body[key] = f"https://example.com/{key}"


def _fix_headers(case: Any) -> None:
    headers = case.headers or {}
    value = headers.get("Cancel-After")
    if value is not None and tolerated("cancel-after-valid"):
        match = _DURATION.match(value)
        if not value or match is None:
            headers["Cancel-After"] = "60s"
    case.headers = headers


def fix_case(case: Any, res: Resources, *, linked: bool = False, only_ids: bool = False) -> None:
    """Point a generated case at real objects (see the module docstring).

    ``linked``: the case comes from an OpenAPI link, so ids that look real are kept.
    ``only_ids``: substitute path ids only (negative cases keep their invalid parts).
    """
    op = case.operation
    label = f"{op.method.upper()} {op.path}"
    params = case.path_parameters or {}
    keep = {k for k, v in params.items() if linked and _looks_real(k, v)}
    if "prediction_id" in params and "prediction_id" not in keep:
        if label.endswith("/cancel"):
            params["prediction_id"] = res.running_prediction()
        else:
            params["prediction_id"] = res.prediction()
    if "file_id" in params:
        if "file_id" in keep:
            pass
        elif op.method.upper() == "DELETE":
            params["file_id"] = res.new_file()
        else:
            params["file_id"] = res.shared_file()
        if label == "GET /files/{file_id}/download":
            signed = urllib.parse.urlsplit(res.server.sign_file_url(params["file_id"]))
            case.query = dict(urllib.parse.parse_qsl(signed.query))
    if "model_owner" in params:
        if label in ("DELETE /models/{model_owner}/{model_name}",):
            owner, name = res.new_model().split("/")
        elif label == "PATCH /models/{model_owner}/{model_name}":
            owner, name = res.shared_model().split("/")
        elif label == "DELETE /models/{model_owner}/{model_name}/versions/{version_id}":
            model, version = res.new_version()
            owner, name = model.split("/")
            params["version_id"] = version
        elif "trainings" in label:
            owner, name = TRAINABLE.split("/")
            model = res._ok(res.http.get(f"/models/{TRAINABLE}"))
            params["version_id"] = model["latest_version"]["id"]
        else:
            owner, name = HELLO.split("/")
            if "version_id" in params:
                params["version_id"] = HELLO_VERSION
        params["model_owner"], params["model_name"] = owner, name
    if "deployment_owner" in params:
        dep = res.new_deployment() if op.method.upper() == "DELETE" else res.deployment()
        params["deployment_owner"], params["deployment_name"] = dep.split("/")
    if "training_id" in params:
        params["training_id"] = res.training()
    if "collection_slug" in params:
        params["collection_slug"] = res.collection()
    case.path_parameters = params or case.path_parameters
    if only_ids:
        if isinstance(case.body, dict) and tolerated("no-random-webhooks"):
            case.body = {k: v for k, v in case.body.items() if k != "webhook"}
        return

    if label == "POST /predictions":
        case.body = _fix_prediction_body(case.body, with_version=True)
    elif label.endswith("/predictions") and op.method.upper() == "POST":
        case.body = _fix_prediction_body(case.body, with_version=False)
    elif label == "POST /models":
        body = dict(case.body) if isinstance(case.body, dict) else {}
        body.update(owner=USERNAME, name=res.unique("contract-created"), hardware="cpu")
        _fix_url_fields(body)
        case.body = body
    elif label == "PATCH /models/{model_owner}/{model_name}":
        body = dict(case.body) if isinstance(case.body, dict) else {}
        _fix_url_fields(body)
        case.body = body
    elif label == "POST /deployments":
        body = dict(case.body) if isinstance(case.body, dict) else {}
        body.update(
            name=res.unique("contract-dep"), model=HELLO, version=HELLO_VERSION, hardware="cpu"
        )
        case.body = body
    elif label == "PATCH /deployments/{deployment_owner}/{deployment_name}":
        body = dict(case.body) if isinstance(case.body, dict) else {}
        if "version" in body:
            body["version"] = HELLO_VERSION
        if "hardware" in body:
            body["hardware"] = "cpu"
        case.body = body
    elif label == "POST /files" and tolerated("files-body-present"):
        body = dict(case.body) if isinstance(case.body, dict) else {}
        if not isinstance(body.get("content"), (bytes, str)):
            body["content"] = b"generated content"
        case.body = body
    elif "trainings" in label:
        body = dict(case.body) if isinstance(case.body, dict) else {}
        body["destination"] = res.new_model()
        train_input = dict(body["input"]) if isinstance(body.get("input"), dict) else {}
        if not isinstance(train_input.get("greeting"), str):
            train_input["greeting"] = "howdy"
        body["input"] = train_input
        if tolerated("no-random-webhooks"):
            body.pop("webhook", None)
        case.body = body
    if case.headers:
        _fix_headers(case)
    _drop_undeclared(case)


def _cleanup(case: Any, response: Any, res: Resources) -> None:
    """Cancel anything a create left running, so generated predictions never pile up."""
    if case.method.upper() != "POST" or response.status_code not in (201, 202):
        return
    try:
        data = response.json()
    except ValueError:
        return
    if isinstance(data, dict) and data.get("status") in ("starting", "processing"):
        res.http.post(f"/predictions/{data['id']}/cancel")


# ---------------------------------------------------------------------------- the tests


def _skip_if_unmounted(case: Any, res: Resources) -> None:
    if not res.is_mounted(case.operation.path):
        pytest.skip(f"{case.operation.path} is not mounted on the local server yet")


@pytest.fixture(autouse=True)
def _clean_state(server: LocalServer, resources: Resources) -> Iterator[None]:
    """Each test starts from the demo models only, so results never depend on test order."""
    server.reset()
    resources.forget()
    yield


@schema.parametrize()
@HYPOTHESIS
def test_operation_conforms(case: Any, server: LocalServer, resources: Resources) -> None:
    """Each operation: generated requests, fixed up to name real objects, pass all checks."""
    _skip_if_unmounted(case, resources)
    fix_case(case, resources)
    response = case.call(base_url=server.base_url + "/v1", headers=dict(AUTH), timeout=90)
    checks = CHECKS
    if case.operation.path == "/files/{file_id}/download" and tolerated(
        "download-signature-is-auth"
    ):
        checks = [check for check in CHECKS if check is not ignored_auth]
    try:
        case.validate_response(response, checks=checks)
    finally:
        _cleanup(case, response, resources)


#: The operations of the link-following sequences (lists are left out: which ids they return
#: depends on earlier scenarios, which makes Hypothesis's replay of a scenario inconsistent).
STATEFUL_OPERATIONS = [
    "predictions.create",
    "models.predictions.create",
    "predictions.get",
    "predictions.cancel",
    "files.create",
    "files.get",
    "files.delete",
]


# ---------------------------------------------------------------------------- negative cases

negative_schema = _load_schema()
negative_schema.config.generation.update(modes=[GenerationMode.NEGATIVE])


def _error_format(case: Any, response: Any) -> None:
    """4xx answers are RFC 7807 problem+json with ``detail`` and ``status``
    (docs/local-server.md, "Auth and errors")."""
    if not 400 <= response.status_code < 500:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    # The spec declares a plain JSON error body for the search handler's own 400 (as the real
    # API answers it); everything else (401, 405 routing errors...) is problem+json on every path.
    search_error = case.operation.path == "/search" and response.status_code == 400
    expected = "application/json" if search_error else "application/problem+json"
    assert content_type.split(";")[0].strip() == expected, (
        f"{case.method.upper()} {case.formatted_path} -> {response.status_code} with "
        f"Content-Type {content_type!r}, expected {expected}: {response.text[:300]}"
    )
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("detail"), str), response.text[:300]
    if expected == "application/problem+json":
        assert body.get("status") == response.status_code, response.text[:300]


@negative_schema.parametrize()
@HYPOTHESIS
def test_operation_rejects_invalid_requests(
    case: Any, server: LocalServer, resources: Resources
) -> None:
    """Requests that violate the spec get a 4xx problem+json (or are accepted), never a 5xx."""
    _skip_if_unmounted(case, resources)
    fix_case(case, resources, only_ids=True)
    response = case.call(base_url=server.base_url + "/v1", headers=dict(AUTH), timeout=90)
    try:
        case.validate_response(response, checks=[not_a_server_error])
        _error_format(case, response)
    finally:
        _cleanup(case, response, resources)


# ---------------------------------------------------------------------------- stateful


def _state_machine(
    server: LocalServer, res: Resources, created: dict[str, str], seen: set[str]
) -> type:
    """The link-following state machine; records ``created`` ids and the ``seen`` transitions."""
    base = schema.include(operation_id=STATEFUL_OPERATIONS).as_state_machine()

    class Workflow(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            # Every scenario starts from the same state, so a replayed scenario sees the same
            # responses (up to random ids).
            server.reset()
            res.forget()

        def before_call(self, case: Any) -> None:
            params = case.path_parameters or {}
            fix_case(case, res, linked=True)
            for key in ("prediction_id", "file_id"):
                if key in params and params[key] in created:
                    seen.add(f"{created[params[key]]} -> {case.method.upper()} {case.path}")

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            if case.method.upper() == "POST" and response.status_code in (201, 202):
                try:
                    created[response.json()["id"]] = f"{case.method.upper()} {case.path}"
                except (ValueError, KeyError, TypeError):
                    pass

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": server.base_url + "/v1", "headers": dict(AUTH), "timeout": 90}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            try:
                case.validate_response(
                    response,
                    checks=STATEFUL_CHECKS,
                    transport_kwargs=kwargs,
                    recorder=self.recorder,
                )
            finally:
                _cleanup(case, response, res)

    return Workflow


_REAL_ID = {
    "prediction_id": re.compile(r"[a-z0-9]{26}"),
    "file_id": re.compile(r"[A-Za-z0-9]{20,}={0,2}"),
}


def _looks_real(key: str, value: Any) -> bool:
    """Whether a linked value looks like a real id (inferred links sometimes pick other fields)."""
    pattern = _REAL_ID.get(key)
    return pattern is not None and isinstance(value, str) and pattern.fullmatch(value) is not None


def test_stateful_links(server: LocalServer, resources: Resources) -> None:
    """Link-following sequences: create -> get -> cancel, upload -> get -> delete."""
    created: dict[str, str] = {}
    seen: set[str] = set()
    machine = _state_machine(server, resources, created, seen)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
    # The sequences really chained ids from earlier responses (not just random ids).
    expected = {
        "POST /predictions -> GET /predictions/{prediction_id}",
        "POST /predictions -> POST /predictions/{prediction_id}/cancel",
        "POST /files -> GET /files/{file_id}",
        "POST /files -> DELETE /files/{file_id}",
    }
    assert expected <= seen, (
        f"missing link transitions: {sorted(expected - seen)}; saw {sorted(seen)}"
    )


def _labels() -> list[str]:
    return [f"{op.ok().method.upper()} {op.ok().path}" for op in schema.get_all_operations()]


def test_spec_is_the_documented_one() -> None:
    """The spec has the 37 operations the local server serves (guards against loading a wrong file)."""
    labels = _labels()
    assert len(labels) == 37, labels
    assert "QUERY /models" in labels


# ---------------------------------------------------------------------------- bugs found here
# Focused reproductions of server bugs the generated runs found. While a bug lasts, its test is
# a BUG entry of the allow-list (xfail strict); once fixed, the test stays as a regression test.


def _call(case: Any, server: LocalServer) -> Any:
    return case.call(base_url=server.base_url + "/v1", headers=dict(AUTH), timeout=90)


def test_prefer_wait_allowed_by_spec_pattern(server: LocalServer) -> None:
    """``Prefer: wait=78`` matches the spec's pattern ``^wait(=([1-9]|[1-9][0-9]|60))?$``."""
    op = schema["/predictions"]["POST"]
    case = op.Case(
        body={"version": HELLO_VERSION, "input": {"text": "x"}},
        headers={"Prefer": "wait=78"},
        media_type="application/json",
    )
    case.validate_response(_call(case, server), checks=CHECKS)


def test_models_create_never_echoes_non_uri_url_fields(server: LocalServer) -> None:
    """``license_url: ""`` must be rejected (422) or not echoed as a non-URI string.

    Regression test of a bug found here (fixed upstream); the fuzzed operations cover it too.
    """
    op = schema["/models"]["POST"]
    body = {
        "owner": USERNAME,
        "name": "contract-url-fields",
        "visibility": "private",
        "hardware": "cpu",
        "license_url": "",
        "cover_image_url": "",
    }
    case = op.Case(body=body, media_type="application/json")
    response = _call(case, server)
    if response.status_code == 422:  # rejecting the value is a valid fix
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/problem+json")
        return
    case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(
    "field, value",
    [("hardware", {}), ("description", {}), ("name", ["x"])],
    ids=["hardware-object", "description-object", "name-array"],
)
def test_models_create_wrong_types_are_4xx(server: LocalServer, field: str, value: Any) -> None:
    """A body field of the wrong JSON type is a 4xx problem+json, not a server error."""
    body = {"owner": USERNAME, "name": "contract-types", "visibility": "private", "hardware": "cpu"}
    body[field] = value
    case = schema["/models"]["POST"].Case(body=body, media_type="application/json")
    response = _call(case, server)
    if not 400 <= response.status_code < 500:
        pytest.fail(f"{response.status_code}: {response.text[:300]}", pytrace=False)
    _error_format(case, response)


def test_checks_reject_a_nonconforming_response() -> None:
    """The check list really fails on a response that breaks the spec (guards against no-ops)."""
    from schemathesis.core.failures import FailureGroup

    offline = [check for check in CHECKS if check is not ignored_auth]  # it would send probes
    case = schema["/account"]["GET"].Case()
    request = httpx.Request("GET", "http://127.0.0.1/v1/account")
    for status, body in ((200, {"type": 5}), (418, {"detail": "x"})):
        response = httpx.Response(status, json=body, request=request)
        response.elapsed = datetime.timedelta(milliseconds=1)
        with pytest.raises(FailureGroup):
            case.validate_response(response, checks=offline)
