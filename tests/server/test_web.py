"""The minimal web pages behind ``urls.web`` and a model's ``url``: HTML over real sockets, and a
real headless Chromium (Debian's ``chromium`` package) rendering a prediction page.
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from replicate.local.server import LocalServer

from .helpers import unique, wait_status, wait_until
from .web_helpers import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    HOSTILE,
    Tags,
    assert_inert,
    colours,
    need_chromium,
    run,
    web,
)


def test_decode_png_reads_the_demo_png() -> None:
    """The test's PNG decoder itself: a known solid PNG decodes to its one colour."""
    from replicate.local.demo_models import _png

    w, h, hist = colours(_png((10, 200, 30), 7))
    assert (w, h) == (7, 7)
    assert hist == Counter({bytes((10, 200, 30)): 49})


# ---------------------------------------------------------------------------- prediction page


def test_prediction_page_shows_status_input_logs_and_image(
    server: LocalServer, http: httpx.Client
) -> None:
    p = run(http, "local-demo/make-file", {"text": "web page", "size": 24})
    assert p["status"] == "succeeded"
    r = web(p["urls"]["web"])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    tags = assert_inert(r.text)
    assert tags.by_id["status"] == "succeeded"
    assert "drew a 24x24 png" in tags.by_id["logs"]
    assert "web page" in r.text and "local-demo/make-file" in r.text
    imgs = [a for a in tags.all("img") if "/delivery/" in a.get("src", "")]
    assert [a["src"] for a in imgs] == [p["output"]]
    img = web(imgs[0]["src"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    digest = hashlib.sha256(b"web page").digest()
    assert colours(img.content) == (24, 24, Counter({digest[:3]: 24 * 24}))
    csp = r.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "default-src 'none'" in csp


def test_text_file_and_streamed_outputs_are_shown_as_text(
    server: LocalServer, http: httpx.Client
) -> None:
    p = run(http, "local-demo/make-file", {"text": "plain <b>text</b> file", "format": "txt"})
    tags = assert_inert(web(p["urls"]["web"]).text)
    assert "plain <b>text</b> file" in tags.by_id["output"]  # the file's content, escaped
    assert any(a.get("href") == p["output"] for a in tags.all("a"))
    p = run(http, "local-demo/stream-text", {"prompt": "one two", "max_tokens": 3, "delay_ms": 0})
    tags = assert_inert(web(p["urls"]["web"]).text)
    assert tags.by_id["output"].strip() == "one two one"


def test_hostile_input_logs_output_and_error_are_escaped(
    server: LocalServer, http: httpx.Client
) -> None:
    name = unique("web")

    def hostile(text: str, fail: bool = False) -> dict[str, Any]:
        print(f"log {text}")
        if fail:
            raise RuntimeError(f"error {text}")
        return {"echo": text, "link": "javascript:alert(2)", "img": f'x" onerror="{text}'}

    server.register(name, hostile)
    for fail in (False, True):
        p = run(http, name, {"text": HOSTILE, "fail": fail})
        page = web(p["urls"]["web"]).text
        assert HOSTILE not in page
        tags = assert_inert(page)
        assert f"log {HOSTILE}" in tags.by_id["logs"]
        if fail:
            assert tags.by_id["status"] == "failed"
            assert f"error {HOSTILE}" in tags.by_id["error"]
        else:
            assert json.loads(tags.by_id["output"])["echo"] == HOSTILE
        assert not any(a.get("href", "").startswith("javascript") for a in tags.all("a"))


def test_unknown_prediction_and_model_give_a_404_page(server: LocalServer) -> None:
    for path in ("/web/p/doesnotexist00000000000000", "/web/nobody/nothing"):
        r = web(server.base_url + path)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert "Not found" in r.text
        assert_inert(r.text)
    r = web(server.base_url + "/web/p/doesnotexist00000000000000", format="json")
    assert r.status_code == 404


def test_running_prediction_page_polls_for_status_and_new_log_lines(
    server: LocalServer, http: httpx.Client
) -> None:
    name = unique("web")
    go = threading.Event()

    def chatty(text: str) -> str:
        print(f"first {text}")
        assert go.wait(30)
        print("second line")
        return "done"

    server.register(name, chatty)
    p = run(http, name, {"text": "<i>x</i>"}, wait=False)
    try:
        wait_until(lambda: "first" in http.get(f"/v1/predictions/{p['id']}").json()["logs"])
        r = web(p["urls"]["web"])
        tags = assert_inert(r.text, scripts=1)
        assert tags.by_id["status"] == "processing"
        assert tags.by_id["logs"] == "first <i>x</i>\n"
        (script,) = tags.all("script")
        nonce = re.search(r"'nonce-([^']+)'", r.headers["content-security-policy"])
        assert nonce is not None and script["nonce"] == nonce.group(1)
        since = int(next(a for _, a in tags.tags if a.get("id") == "live")["data-since"])
        d = web(p["urls"]["web"], format="json", since=since).json()
        assert d == {
            "status": "processing",
            "logs": "",
            "since": since,
            "reset": False,
            "terminal": False,
            "error": None,
        }
    finally:
        go.set()
    wait_status(http, p["id"], {"succeeded"})
    d = web(p["urls"]["web"], format="json", since=since).json()
    assert (d["status"], d["logs"], d["terminal"]) == ("succeeded", "second line\n", True)
    d = web(p["urls"]["web"], format="json", since=10**6).json()  # a stale offset starts over
    assert d["reset"] and d["logs"] == "first <i>x</i>\nsecond line\n"
    final = assert_inert(web(p["urls"]["web"]).text)  # terminal: no script any more
    assert final.by_id["output"].strip() == "done"


# ---------------------------------------------------------------------------- model page


def test_model_page_shows_description_version_schema_and_predictions(
    server: LocalServer, http: httpx.Client
) -> None:
    p = run(http, "local-demo/make-file", {"text": "model page", "size": 8})
    model = http.get("/v1/models/local-demo/make-file").json()
    r = web(model["url"])
    assert r.status_code == 200
    tags = assert_inert(r.text, scripts=1, csp=r.headers["content-security-policy"])
    assert tags.by_id["description"] == model["description"]
    assert tags.by_id["latest-version"] == model["latest_version"]["id"]
    text = re.sub(r"\s+", " ", html.unescape(r.text))
    for name in ("text", "format", "size"):
        assert f"<code>{name}</code>" in text
    assert '"png", "txt"' in text and "Image side in pixels" in text
    links = {a.get("href") for a in tags.all("a")}
    assert f"/web/p/{p['id']}" in links  # recent prediction
    example = model["default_example"]["id"]
    assert f"/web/p/{example}" in links
    assert web(f"{server.base_url}/web/p/{example}").status_code == 200


def test_model_page_escapes_hostile_metadata(server: LocalServer, http: httpx.Client) -> None:
    name = unique("web")
    server.register(
        name,
        lambda text: text,
        description=HOSTILE,
        readme=f"# {HOSTILE}\n<img src=x onerror=alert(1)>",
        github_url="javascript:alert(1)",
        tags=[HOSTILE],
    )
    r = web(f"{server.base_url}/web/{name}")
    assert r.status_code == 200
    assert HOSTILE not in r.text and "<img src=x" not in r.text
    tags = assert_inert(r.text, scripts=1, csp=r.headers["content-security-policy"])
    assert tags.by_id["description"] == HOSTILE
    assert "onerror=alert(1)" in tags.by_id["readme"]


# ---------------------------------------------------------------------------- real browser


@pytest.fixture(scope="module")
def browser_server() -> Iterator[LocalServer]:
    """A private server, so its request log only holds what this module's tests did."""
    with LocalServer(test_controls=True) as s:
        yield s


def chromium(url: str, *args: str, tmp: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium once on ``url`` (bounded)."""
    profile = tempfile.mkdtemp(dir=tmp)
    env = {**os.environ, "HOME": tmp}
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
    res = subprocess.run(cmd, capture_output=True, timeout=40, env=env, check=False)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    return res


@pytest.mark.timeout(60)
def test_chromium_renders_status_logs_and_output_image(
    browser_server: LocalServer, tmp_path: Any
) -> None:
    need_chromium()
    with httpx.Client(
        base_url=browser_server.base_url, headers={"Authorization": "Bearer t"}, timeout=30
    ) as http:
        p = run(http, "local-demo/make-file", {"text": "hello chromium", "size": 200})
    assert p["status"] == "succeeded"
    delivery = httpx.URL(p["output"]).path
    tmp = tempfile.mkdtemp(prefix="web-chromium-")
    try:
        dom = chromium(p["urls"]["web"], "--dump-dom", tmp=tmp).stdout.decode()
        tags = Tags(dom)
        assert tags.by_id["status"] == "succeeded"
        assert "drew a 200x200 png" in tags.by_id["logs"]
        assert [a["src"] for a in tags.all("img")] == [p["output"]]

        shot = tmp_path / "prediction.png"
        chromium(p["urls"]["web"], f"--screenshot={shot}", tmp=tmp)
        w, h, hist = colours(shot.read_bytes())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Chromium fetched the image from the delivery endpoint (nobody else did) ...
    log = httpx.get(f"{browser_server.base_url}/_local/requests", timeout=30).json()
    served = [e for e in log if e["path"] == delivery and e["method"] == "GET"]
    assert served and all(e["status"] == 200 for e in served), served
    # ... and painted it: the screenshot holds the 200x200 square in the model's exact colour,
    # next to text and page chrome in many other colours.
    assert (w, h) == (1000, 800)
    colour = hashlib.sha256(b"hello chromium").digest()[:3]
    assert hist[colour] >= 200 * 200, hist.most_common(5)
    assert len(hist) > 50, hist.most_common(5)
    assert hist.most_common(1)[0][1] < w * h * 0.95  # not a blank page


@pytest.mark.timeout(60)
def test_chromium_follows_a_running_prediction_live(browser_server: LocalServer) -> None:
    """The page's script polls, appends new log lines, and reloads once the prediction is done.

    Chromium runs on virtual time (``--virtual-time-budget``), which stands still while a fetch
    is in flight, so the polls keep coming until the model has finished; each step below waits
    on what the browser asked for (the request log), never on the clock.
    """
    need_chromium()
    name = unique("web")
    go, finish = threading.Event(), threading.Event()

    def two_steps(text: str) -> str:
        print(f"first {text}")
        assert go.wait(30)
        print("second line")
        assert finish.wait(30)
        return "all done"

    browser_server.register(name, two_steps)
    base = browser_server.base_url
    tmp = tempfile.mkdtemp(prefix="web-chromium-")

    def polls() -> list[int]:
        log = httpx.get(f"{base}/_local/requests", timeout=30).json()
        return [
            int(dict(kv.split("=", 1) for kv in e["query"].split("&"))["since"])
            for e in log
            if e["path"] == f"/web/p/{p['id']}" and "format=json" in e["query"]
        ]

    with httpx.Client(base_url=base, headers={"Authorization": "Bearer t"}, timeout=30) as http:
        p = run(http, name, {"text": "<b>live</b>"}, wait=False)
        try:
            wait_until(lambda: "first" in http.get(f"/v1/predictions/{p['id']}").json()["logs"])
            first = len("first <b>live</b>\n")
            result: dict[str, Any] = {}

            def browse() -> None:
                try:
                    result["res"] = chromium(
                        p["urls"]["web"], "--dump-dom", "--virtual-time-budget=10000000", tmp=tmp
                    )
                except BaseException as exc:  # reported by the main thread
                    result["error"] = exc

            thread = threading.Thread(target=browse, daemon=True)
            thread.start()
            wait_until(lambda: first in polls() or not thread.is_alive(), timeout=40)
            go.set()
            # The script received the new line and moved its offset past it.
            wait_until(
                lambda: first + len("second line\n") in polls() or not thread.is_alive(),
                timeout=40,
            )
            finish.set()
            thread.join(45)
        finally:
            go.set()
            finish.set()
            shutil.rmtree(tmp, ignore_errors=True)
        assert not thread.is_alive()
        if "error" in result:
            raise result["error"]
        assert http.get(f"/v1/predictions/{p['id']}").json()["status"] == "succeeded"
    tags = Tags(result["res"].stdout.decode())
    # After the reload the page is the terminal one, rendered by the server.
    assert tags.by_id["status"] == "succeeded"
    assert tags.by_id["logs"] == "first <b>live</b>\nsecond line\n"
    assert tags.by_id["output"].strip() == "all done"
    assert not tags.all("script")
