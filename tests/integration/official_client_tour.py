"""Every namespace of the OFFICIAL replicate 1.0.7 client against a local server, sync and async.

Not a test module: ``test_official_client.py`` runs this file as a script with the interpreter
of the separate 1.0.7 virtual environment (a black box: only its public calls are used), with
``REPLICATE_BASE_URL`` and ``REPLICATE_API_TOKEN`` (and ``SSL_CERT_FILE`` over TLS) set. It
prints one JSON object: ``{"version": ..., "calls": [{"call", "ok", "detail"}, ...]}``; a call
that raises is recorded as failed and the tour goes on. ``TOUR_TLS=1``: file outputs must be
file objects whose ``read()`` gives the PNG.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import replicate
from replicate.client import Client

HELLO = "replicate/hello-world"
TRAINABLE = "local-demo/hello-trainable"
TLS = os.environ.get("TOUR_TLS") == "1"
RUN_ID = os.environ.get("TOUR_ID", "t")
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
PNG = b"\x89PNG\r\n\x1a\n"
CALLS: list[dict[str, Any]] = []


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def describe(value: Any) -> str:
    text = type(value).__name__
    for attr in ("slug", "id", "status", "username", "name", "key"):
        if hasattr(value, attr) and not callable(getattr(value, attr)):
            text += f" {attr}={getattr(value, attr)!r}"
            break
    if isinstance(value, (str, int, bool)):
        text += f" {value!r}"[:80]
    return text


def call(name: str, fn: Callable[[], Any]) -> Any:
    try:
        value = fn()
    except BaseException as exc:  # record and go on: the test reports every failure
        CALLS.append({"call": name, "ok": False, "detail": f"{type(exc).__name__}: {exc}"[:400]})
        return None
    CALLS.append({"call": name, "ok": True, "detail": describe(value)})
    return value


async def acall(name: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    try:
        value = await fn()
    except BaseException as exc:
        CALLS.append({"call": name, "ok": False, "detail": f"{type(exc).__name__}: {exc}"[:400]})
        return None
    CALLS.append({"call": name, "ok": True, "detail": describe(value)})
    return value


def wait_terminal(get: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        obj = get()
        if obj.status in TERMINAL:
            return obj
        check(time.monotonic() < deadline, f"still {obj.status} after {timeout} s")
        time.sleep(0.05)


# ---------------------------------------------------------------------------- sync


def sync_tour(c: Client) -> None:
    tag = f"{RUN_ID}s"
    # models and versions
    model = call("models.get", lambda: c.models.get(HELLO))
    call("models.list", lambda: check(len(c.models.list().results) > 0, "no models") or "ok")
    call("models.search", lambda: c.models.search("hello"))
    call("model.versions.list", lambda: model.versions.list())
    vid = model.latest_version.id if model is not None and model.latest_version else ""
    call("model.versions.get", lambda: model.versions.get(vid))
    call(
        "version.cog_version is a string",
        lambda: check(isinstance(model.latest_version.cog_version, str), "cog_version"),
    )
    call(
        "models.create",
        lambda: c.models.create("local", f"dest-{tag}", visibility="private", hardware="cpu"),
    )
    # run / stream
    call("run owner/name", lambda: check(c.run(HELLO, input={"text": "a"}) == "hello a", "run"))
    call(
        "run owner/name:version",
        lambda: check(c.run(f"{HELLO}:{vid}", input={"text": "b"}) == "hello b", "run pinned"),
    )
    call("module run", lambda: replicate.run(HELLO, input={"text": "c"}))
    call(
        "stream",
        lambda: check(
            "".join(
                str(e)
                for e in c.stream(
                    "local-demo/stream-text", input={"prompt": "one two", "delay_ms": 0}
                )
            )
            .strip()
            .startswith("one"),
            "stream text",
        ),
    )
    call("run make-file", lambda: file_output(c.run("local-demo/make-file", input={"text": "x"})))
    # predictions
    p = call(
        "predictions.create version", lambda: c.predictions.create(version=vid, input={"text": "d"})
    )
    call("prediction.status is starting", lambda: check(p.status == "starting", p.status))
    call("prediction.wait", lambda: (p.wait(), check(p.output == "hello d", str(p.output)))[1])
    call(
        "predictions.create model",
        lambda: c.predictions.create(model=HELLO, input={"text": "e"}).wait(),
    )
    call(
        "models.predictions.create",
        lambda: c.models.predictions.create(model=HELLO, input={"text": "f"}),
    )
    call("predictions.get", lambda: c.predictions.get(p.id))
    call("predictions.list", lambda: check(len(c.predictions.list().results) > 0, "empty"))
    slow = call(
        "predictions.create sleep",
        lambda: c.predictions.create(model="local-demo/sleep", input={"seconds": 30, "tick": 0.1}),
    )
    call("predictions.cancel", lambda: c.predictions.cancel(slow.id))
    call(
        "canceled",
        lambda: check(
            wait_terminal(lambda: c.predictions.get(slow.id)).status == "canceled", "cancel"
        ),
    )
    # files
    f = call(
        "files.create", lambda: c.files.create(io.BytesIO(b"hello file"), filename="hello.txt")
    )
    call("files.get", lambda: c.files.get(f.id))
    call("files.list", lambda: check(any(x.id == f.id for x in c.files.list()), "listed"))
    call("files.delete", lambda: c.files.delete(f.id))
    # catalogue
    page = call("collections.list", lambda: c.collections.list())
    call("collections.get", lambda: c.collections.get(page.results[0].slug))
    call("hardware.list", lambda: check(len(c.hardware.list()) > 0, "no hardware"))
    call("accounts.current", lambda: c.accounts.current())
    call(
        "webhooks.default.secret",
        lambda: check(c.webhooks.default.secret().key.startswith("whsec_"), "secret"),
    )
    # deployments
    dep = f"dep-{tag}"
    call(
        "deployments.create",
        lambda: c.deployments.create(
            name=dep, model=HELLO, version=vid, hardware="cpu", min_instances=0, max_instances=1
        ),
    )
    d = call("deployments.get", lambda: c.deployments.get(f"local/{dep}"))
    call("deployments.list", lambda: c.deployments.list())
    call("deployments.update", lambda: c.deployments.update("local", dep, max_instances=2))
    call("deployment.predictions.create", lambda: waited(d.predictions.create(input={"text": "g"})))
    call(
        "deployments.predictions.create",
        lambda: c.deployments.predictions.create(f"local/{dep}", input={"text": "h"}),
    )
    call("deployments.delete", lambda: c.deployments.delete("local", dep))
    # trainings
    base = call("trainable version", lambda: c.models.get(TRAINABLE).latest_version.id)
    t = call(
        "trainings.create",
        lambda: c.trainings.create(
            model=TRAINABLE,
            version=base,
            input={"greeting": "howdy"},
            destination=f"local/dest-{tag}",
        ),
    )
    done = call("trainings.get", lambda: wait_terminal(lambda: c.trainings.get(t.id)))
    call(
        "trained version runs",
        lambda: check(c.run(done.output["version"], input={"text": "x"}) == "howdy x", "trained"),
    )
    call("trainings.list", lambda: c.trainings.list())
    t2 = call(
        "trainings.create 2",
        lambda: c.trainings.create(
            model=TRAINABLE, version=base, input={"greeting": "hi"}, destination=f"local/dest-{tag}"
        ),
    )
    call("trainings.cancel", lambda: c.trainings.cancel(t2.id))


def waited(prediction: Any) -> Any:
    prediction.wait()
    check(prediction.status == "succeeded", f"{prediction.status}: {prediction.error}")
    return prediction


def file_output(out: Any) -> str:
    if TLS:  # an https URL: 1.0.x gives a FileOutput
        check(type(out).__name__ == "FileOutput", f"not a file object: {type(out).__name__}")
        check(out.read()[:8] == PNG, "not the PNG")
        return "FileOutput read"
    check(isinstance(out, str) and out.startswith("http://"), f"{out!r}")
    return "URL string (plain http)"


# ---------------------------------------------------------------------------- async


async def async_tour(c: Client) -> None:
    tag = f"{RUN_ID}a"
    model = await acall("async models.get", lambda: c.models.async_get(HELLO))
    await acall("async models.list", lambda: c.models.async_list())
    await acall("async models.search", lambda: c.models.async_search("hello"))
    vid = model.latest_version.id if model is not None and model.latest_version else ""
    await acall("async model.versions.list", lambda: model.versions.async_list())
    await acall("async model.versions.get", lambda: model.versions.async_get(vid))
    await acall(
        "async models.create",
        lambda: c.models.async_create("local", f"dest-{tag}", visibility="private", hardware="cpu"),
    )

    async def run(ref: str, text: str) -> Any:
        out = await c.async_run(ref, input={"text": text})
        check(out == f"hello {text}", repr(out))
        return out

    await acall("async run owner/name", lambda: run(HELLO, "a"))
    await acall("async run owner/name:version", lambda: run(f"{HELLO}:{vid}", "b"))
    await acall("async module run", lambda: replicate.async_run(HELLO, input={"text": "c"}))

    async def stream() -> str:
        text = ""
        async for event in await c.async_stream(
            "local-demo/stream-text", input={"prompt": "one two", "delay_ms": 0}
        ):
            text += str(event)
        check(text.strip().startswith("one"), text)
        return text

    await acall("async stream", stream)

    async def make_file() -> str:
        out = await c.async_run("local-demo/make-file", input={"text": "x"})
        if TLS:
            check(type(out).__name__ == "FileOutput", type(out).__name__)
            check((await out.aread())[:8] == PNG, "not the PNG")
            return "FileOutput aread"
        return file_output(out)

    await acall("async run make-file", make_file)
    p = await acall(
        "async predictions.create",
        lambda: c.predictions.async_create(version=vid, input={"text": "d"}),
    )

    async def wait(pred: Any) -> Any:
        await pred.async_wait()
        check(pred.status == "succeeded", pred.status)
        return pred

    await acall("async prediction.async_wait", lambda: wait(p))
    await acall(
        "async models.predictions.create",
        lambda: c.models.predictions.async_create(model=HELLO, input={"text": "f"}),
    )
    await acall("async predictions.get", lambda: c.predictions.async_get(p.id))
    await acall("async predictions.list", lambda: c.predictions.async_list())
    slow = await acall(
        "async predictions.create sleep",
        lambda: c.predictions.async_create(
            model="local-demo/sleep", input={"seconds": 30, "tick": 0.1}
        ),
    )
    await acall("async predictions.cancel", lambda: c.predictions.async_cancel(slow.id))
    f = await acall(
        "async files.create",
        lambda: c.files.async_create(io.BytesIO(b"hello file"), filename="hello.txt"),
    )
    await acall("async files.get", lambda: c.files.async_get(f.id))
    await acall("async files.list", lambda: c.files.async_list())
    await acall("async files.delete", lambda: c.files.async_delete(f.id))
    page = await acall("async collections.list", lambda: c.collections.async_list())
    await acall("async collections.get", lambda: c.collections.async_get(page.results[0].slug))
    await acall("async hardware.list", lambda: c.hardware.async_list())
    await acall("async accounts.current", lambda: c.accounts.async_current())
    await acall("async webhooks.default.secret", lambda: c.webhooks.default.async_secret())
    dep = f"dep-{tag}"
    await acall(
        "async deployments.create",
        lambda: c.deployments.async_create(
            name=dep, model=HELLO, version=vid, hardware="cpu", min_instances=0, max_instances=1
        ),
    )
    await acall("async deployments.get", lambda: c.deployments.async_get(f"local/{dep}"))
    await acall("async deployments.list", lambda: c.deployments.async_list())
    await acall(
        "async deployments.update",
        lambda: c.deployments.async_update("local", dep, max_instances=2),
    )
    await acall(
        "async deployments.predictions.create",
        lambda: c.deployments.predictions.async_create(f"local/{dep}", input={"text": "h"}),
    )
    await acall("async deployments.delete", lambda: c.deployments.async_delete("local", dep))
    trainable = await acall("async trainable version", lambda: c.models.async_get(TRAINABLE))
    base = trainable.latest_version.id if trainable is not None else ""
    t = await acall(
        "async trainings.create",
        lambda: c.trainings.async_create(
            model=TRAINABLE,
            version=base,
            input={"greeting": "hey"},
            destination=f"local/dest-{tag}",
        ),
    )
    await acall("async trainings.get", lambda: c.trainings.async_get(t.id))
    await acall("async trainings.list", lambda: c.trainings.async_list())
    await acall("async trainings.cancel", lambda: c.trainings.async_cancel(t.id))


def main() -> int:
    client = Client(
        api_token=os.environ["REPLICATE_API_TOKEN"], base_url=os.environ["REPLICATE_BASE_URL"]
    )
    call("the sync tour ends", lambda: sync_tour(client))
    call("the async tour ends", lambda: asyncio.run(async_tour(client)))
    version = getattr(replicate, "__version__", None)
    if version is None:
        import importlib.metadata

        version = importlib.metadata.version("replicate")
    print(json.dumps({"version": version, "calls": CALLS}))
    return 0 if all(c["ok"] for c in CALLS) else 1


if __name__ == "__main__":
    sys.exit(main())
