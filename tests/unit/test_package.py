"""The public surface: import paths, lazy imports, name shadowing, default-client delegation."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import httpx
import pytest

import replicate

# docs/api.md, "Modules": module -> names that must be importable from it (those of 1.0.x and ours).
IMPORT_PATHS: dict[str, list[str]] = {
    "replicate.__about__": ["__version__"],
    "replicate.client": ["Client", "RetryTransport", "_get_api_token_from_environment"],
    "replicate.exceptions": ["ReplicateException", "ReplicateError", "ModelError"],
    "replicate.helpers": [
        "FileOutput",
        "base64_encode_file",
        "encode_json",
        "async_encode_json",
        "transform_output",
    ],
    "replicate.prediction": ["Prediction", "Predictions"],
    "replicate.model": ["Model", "Models", "ModelsPredictions", "Page", "Prediction"],
    "replicate.version": ["Version", "Versions"],
    "replicate.training": ["Training", "Trainings"],
    "replicate.deployment": [
        "Deployment",
        "Deployments",
        "DeploymentPredictions",
        "DeploymentsPredictions",
    ],
    "replicate.collection": ["Collection", "Collections"],
    "replicate.hardware": ["Hardware", "HardwareNamespace"],
    "replicate.file": ["File", "Files", "FileEncodingStrategy"],
    "replicate.account": ["Account", "Accounts"],
    "replicate.pagination": ["Page", "paginate", "async_paginate"],
    "replicate.stream": ["ServerSentEvent", "EventSource", "stream", "async_stream"],
    "replicate.identifier": ["ModelVersionIdentifier"],
    "replicate.webhook": [
        "WebhookSigningSecret",
        "Webhooks",
        "WebhookValidationError",
        "MissingWebhookHeaderError",
        "MissingWebhookBodyError",
        "InvalidTimestampError",
        "InvalidSignatureError",
        "InvalidSecretKeyError",
    ],
    "replicate.schema": ["version_has_no_array_type", "make_schema_backwards_compatible"],
    "replicate.resource": ["Resource", "Namespace"],
}


@pytest.mark.parametrize("module", sorted(IMPORT_PATHS))
def test_import_paths(module: str) -> None:
    mod = importlib.import_module(module)
    for name in IMPORT_PATHS[module]:
        assert hasattr(mod, name), f"{module}.{name} is missing"


def test_import_is_light() -> None:
    code = (
        "import sys, replicate\n"
        "heavy = [m for m in ('httpx', 'pydantic', 'starlette', 'uvicorn', 'rich') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


SUBMODULES = [
    "account",
    "client",
    "collection",
    "deployment",
    "exceptions",
    "file",
    "helpers",
    "identifier",
    "model",
    "pagination",
    "prediction",
    "resource",
    "schema",
    "training",
    "version",
    "webhook",
]


def test_submodules_are_attributes_after_a_bare_import() -> None:
    """1.0.x code uses them in annotations and decorators at import time of its own module."""
    code = (
        "import sys, types, replicate\n"
        "assert 'httpx' not in sys.modules\n"
        "def f(p: replicate.prediction.Prediction) -> replicate.model.Model: ...\n"
        "catch = (replicate.exceptions.ReplicateError, replicate.exceptions.ModelError)\n"
        f"names = {SUBMODULES!r}\n"
        "for name in names:\n"
        "    module = getattr(replicate, name)\n"
        "    assert isinstance(module, types.ModuleType), name\n"
        "    assert module is sys.modules['replicate.' + name], name\n"
        "    assert name in dir(replicate), name\n"
        "assert callable(replicate.run) and callable(replicate.stream)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
    with pytest.raises(AttributeError):
        replicate.no_such_module  # noqa: B018


def test_client_module_exports_the_1_0_names_lazily() -> None:
    """``from replicate.client import Predictions, run, ...`` (also mock.patch targets)."""
    code = (
        "import sys, replicate.client as c\n"
        "assert 'httpx' not in sys.modules\n"
        "from replicate.client import (Accounts, Collections, Deployments, Files, Hardware,\n"
        "    Models, Predictions, ReplicateError, Trainings, Webhooks, async_run, async_stream,\n"
        "    run, stream)\n"
        "import replicate.prediction, replicate.hardware, replicate.exceptions\n"
        "assert Predictions is replicate.prediction.Predictions\n"
        "assert Hardware is sys.modules['replicate.hardware'].HardwareNamespace\n"
        "assert ReplicateError is replicate.exceptions.ReplicateError\n"
        "assert run is sys.modules['replicate.run'].run\n"
        "assert stream is sys.modules['replicate.stream'].stream\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
    from unittest import mock

    import replicate.client

    sentinel = object()
    with mock.patch("replicate.client.Predictions", sentinel):
        assert replicate.client.Predictions is sentinel
    assert replicate.client.Predictions is not sentinel


def test_top_level_names() -> None:
    for name in replicate.__all__:
        assert hasattr(replicate, name), name
    from replicate.exceptions import ModelError, ReplicateError, ReplicateException
    from replicate.helpers import FileOutput
    from replicate.pagination import async_paginate, paginate

    assert replicate.ReplicateError is ReplicateError
    assert replicate.ReplicateException is ReplicateException
    assert replicate.ModelError is ModelError
    assert replicate.FileOutput is FileOutput
    assert replicate.paginate is paginate
    assert replicate.async_paginate is async_paginate
    assert isinstance(replicate.__version__, str)
    major, minor = (int(x) for x in replicate.__version__.split(".")[:2])
    assert (major, minor) >= (1, 1)


def test_functions_shadow_their_submodules() -> None:
    # ``import replicate.run as m`` would give the function (attribute lookup comes first).
    importlib.import_module("replicate.hardware")
    run_module = importlib.import_module("replicate.run")
    stream_module = importlib.import_module("replicate.stream")

    assert callable(replicate.run) and not inspect.ismodule(replicate.run)
    assert callable(replicate.stream) and not inspect.ismodule(replicate.stream)
    assert not inspect.ismodule(replicate.hardware)
    assert sys.modules["replicate.run"] is run_module
    assert replicate.stream.ServerSentEvent is stream_module.ServerSentEvent
    from replicate.stream import ServerSentEvent

    assert ServerSentEvent is stream_module.ServerSentEvent


def test_namespaces_follow_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"name": "CPU", "sku": "cpu"}])

    ns = replicate.hardware
    assert replicate.hardware is ns
    monkeypatch.setattr(
        replicate, "default_client", replicate.Client("t", transport=httpx.MockTransport(handler))
    )
    result = replicate.hardware.list()
    assert [h.sku for h in result] == ["cpu"]
    assert seen[0].url.path == "/v1/hardware"


def test_namespace_methods_can_be_wrapped() -> None:
    original = replicate.predictions.create
    calls: list[object] = []

    def wrapper(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return "wrapped"

    try:
        replicate.predictions.create = wrapper
        assert replicate.predictions.create("v") == "wrapped"
        assert calls == [("v",)]
    finally:
        del replicate.predictions.create
    assert replicate.predictions.create == original
