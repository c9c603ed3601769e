"""The web pages in a real headless Chromium (Debian's ``chromium``, driven by Playwright without
any browser download): the index, the model page's Markdown, the playground running models
(plain, streamed text, a file upload, a token-protected server), logs opened at the newest line,
hostile values staying inert, and every page at phone width.

Screenshots go to ``artifacts/screenshots/`` at the repository root for a person to look at
(CI prints their paths). Every wait is on a state of the page or the server, never on the clock.
"""

from __future__ import annotations

import json
import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from replicate.local.demo_models import _png
from replicate.local.schema import ConcatenateIterator, Input
from replicate.local.server import LocalServer

from .helpers import unique, wait_status, wait_until
from .web_helpers import CHROMIUM, HOSTILE, need_chromium, run

SHOTS = pathlib.Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
#: Generous bound for one page state to appear (a failure, not a pace).
STATE_MS = 30_000
#: Playwright's ``expect`` (imported with the browser, so a missing Chromium skips cleanly).
expect: Any = None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    global expect
    need_chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def site() -> Iterator[LocalServer]:
    """A private server with test controls (its request log shows what the browser did)."""
    with LocalServer(test_controls=True) as s:
        yield s


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    yield pg
    context.close()
    assert not errors, errors  # no script error on any page


def shot(pg: Any, name: str, *, full: bool = True) -> pathlib.Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=full)
    assert path.stat().st_size > 1000
    return path


def api(site: LocalServer) -> httpx.Client:
    return httpx.Client(base_url=site.base_url, headers={"Authorization": "Bearer t"}, timeout=30)


def requests_log(site: LocalServer) -> list[dict[str, Any]]:
    return httpx.get(f"{site.base_url}/_local/requests", timeout=30).json()


def no_sideways_scroll(pg: Any) -> None:
    sizes = pg.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert sizes[0] <= sizes[1], f"the page scrolls sideways: {sizes}"


# ---------------------------------------------------------------------------- pages


def test_index_lists_models_and_predictions_with_links(site: LocalServer, page: Any) -> None:
    with api(site) as http:
        p = run(http, "replicate/hello-world", {"text": "index page"})
    page.goto(site.base_url + "/")
    assert page.title() == "Local Replicate server"
    models = page.locator("table.models a").all_inner_texts()
    assert {"replicate/hello-world", "local-demo/file-info", "local-demo/stream-text"} <= set(
        models
    )
    row = page.locator("tr.prediction", has_text=p["id"])
    assert "hello index page" in row.inner_text()
    shot(page, "index")
    page.click("table.models a:text-is('replicate/hello-world')")
    page.wait_for_url("**/web/replicate/hello-world")
    assert page.locator("body > h1").inner_text() == "replicate/hello-world"


def test_model_page_renders_the_readme_as_markdown(site: LocalServer, page: Any) -> None:
    name = unique("md")
    site.register(
        name,
        lambda text: text,
        readme=(
            "# Title\n\nSome *emphasis* and `code`.\n\n- one\n- [a link](https://example.com)\n"
            f"- [bad](javascript:window.__pwned=1)\n\n{HOSTILE}\n\n"
            '<img src=x onerror="window.__pwned=1">\n'
        ),
    )
    page.goto(f"{site.base_url}/web/{name}")
    readme = page.locator("#readme")
    assert readme.locator("h1").inner_text() == "Title"
    assert readme.locator("em").inner_text() == "emphasis"
    assert readme.locator("li").count() == 3
    assert readme.locator("a").evaluate_all("as => as.map(a => a.href)") == ["https://example.com/"]
    assert readme.locator("img, script").count() == 0
    assert HOSTILE in readme.inner_text()  # shown as text
    assert page.evaluate("window.__pwned") is None
    shot(page, "model-readme")


def test_logs_box_opens_at_the_newest_line(site: LocalServer, page: Any) -> None:
    name = unique("logs")

    def chatty(lines: int) -> str:
        for i in range(lines):
            print(f"log line {i}")
        return "done"

    site.register(name, chatty)
    with api(site) as http:
        p = run(http, name, {"lines": 300})
    page.goto(p["urls"]["web"])
    box = page.locator(".logbox").bounding_box()
    last = page.locator("#logs").bounding_box()
    assert last["height"] > box["height"] * 2  # the logs overflow their box ...
    assert (
        abs((last["y"] + last["height"]) - (box["y"] + box["height"])) < 2
    )  # ... shown at the end
    assert last["y"] < box["y"]
    # The newest line is inside the box's visible area.
    visible = page.evaluate(
        """() => {
          const box = document.querySelector('.logbox').getBoundingClientRect();
          const pre = document.getElementById('logs');
          const range = document.createRange();
          const text = pre.firstChild;
          const at = text.data.lastIndexOf('log line 299');
          range.setStart(text, at); range.setEnd(text, at + 12);
          const r = range.getBoundingClientRect();
          return r.top >= box.top && r.bottom <= box.bottom;
        }"""
    )
    assert visible
    page.locator(".logbox").scroll_into_view_if_needed()
    shot(page, "prediction-logs", full=False)


@pytest.mark.parametrize("which", ["index", "model", "prediction"])
def test_pages_fit_a_phone(site: LocalServer, browser: Any, which: str) -> None:
    long_word = "x" * 600
    with api(site) as http:
        p = run(http, "local-demo/make-file", {"text": long_word, "size": 512})
        wide = run(http, "replicate/hello-world", {"text": long_word})
    url = {
        "index": site.base_url + "/",
        "model": site.base_url + "/web/local-demo/make-file",
        "prediction": p["urls"]["web"],
    }[which]
    context = browser.new_context(viewport={"width": 420, "height": 900}, is_mobile=True)
    try:
        pg = context.new_page()
        pg.goto(url)
        if which == "index":
            assert pg.locator("tr.prediction", has_text=wide["id"]).count() == 1
        no_sideways_scroll(pg)
        shot(pg, f"{which}-420px")
    finally:
        context.close()


# ---------------------------------------------------------------------------- playground


def test_playground_runs_hello_world(site: LocalServer, page: Any) -> None:
    page.goto(site.base_url + "/web/replicate/hello-world")
    page.wait_for_selector("#playground[data-ready]")
    page.fill("#in-text", "playground")
    assert page.inner_text("#pg-cli") == "replicate run replicate/hello-world -i text=playground"
    assert '"text": "playground",' in page.inner_text("#pg-python")
    page.click("#pg-run")
    page.wait_for_selector("#pg-status.succeeded", timeout=STATE_MS)
    assert page.inner_text("#pg-output") == "hello playground"
    link = page.get_attribute("#pg-link", "href")
    assert link is not None and link.startswith("/web/p/")
    pid = link.rsplit("/", 1)[1]
    created = [
        e
        for e in requests_log(site)
        if e["method"] == "POST" and e["path"] == "/v1/models/replicate/hello-world/predictions"
    ]
    assert created and created[-1]["status"] == 201
    with api(site) as http:
        done = http.get(f"/v1/predictions/{pid}").json()
    assert done["input"] == {"text": "playground"} and done["output"] == "hello playground"
    shot(page, "playground-hello-world")


def test_playground_streams_text_as_it_comes(site: LocalServer, page: Any) -> None:
    name = unique("stream")
    second = threading.Event()

    def words(  # type: ignore[misc]
        prompt: str = Input(description="The first word"),
        count: int = Input(default=2, ge=1, le=10),
    ) -> ConcatenateIterator[str]:
        print("first token")
        yield prompt
        assert second.wait(30)
        print("second token")
        yield " and more"

    site.register(name, words)
    try:
        page.goto(f"{site.base_url}/web/{name}")
        page.wait_for_selector("#playground[data-ready]")
        page.fill("#in-prompt", "streamed")
        page.fill("#in-count", "3")
        assert page.inner_text("#pg-cli") == f"replicate run {name} -i prompt=streamed -i count=3"
        page.click("#pg-run")
        # The first token is on the page while the model still holds the second one back.
        expect(page.locator("#pg-output")).to_have_text("streamed", timeout=STATE_MS)
        expect(page.locator("#pg-logs")).to_contain_text("first token", timeout=STATE_MS)
        assert page.inner_text("#pg-status") in ("starting", "processing")
        shot(page, "playground-streaming")
    finally:
        second.set()
    page.wait_for_selector("#pg-status.succeeded", timeout=STATE_MS)
    assert page.inner_text("#pg-output") == "streamed and more"
    assert "second token" in page.inner_text("#pg-logs")
    streams = [e for e in requests_log(site) if e["path"].startswith("/v1/streams/")]
    assert streams, "the page did not follow urls.stream"


def test_playground_uploads_a_file_input(site: LocalServer, page: Any, tmp_path: Any) -> None:
    image = tmp_path / "square.png"
    image.write_bytes(_png((200, 10, 10), 3))
    page.goto(site.base_url + "/web/local-demo/file-info")
    page.wait_for_selector("#playground[data-ready]")
    page.set_input_files("#in-file", str(image))
    assert page.inner_text("#pg-cli") == "replicate run local-demo/file-info -i file=@square.png"
    assert '"file": open("square.png", "rb"),' in page.inner_text("#pg-python")
    page.click("#pg-run")
    page.wait_for_selector("#pg-status.succeeded", timeout=STATE_MS)
    out = json.loads(page.inner_text("#pg-output pre"))
    assert out == {
        "name": "square.png",
        "size": len(image.read_bytes()),
        "type": "image/png",
        "width": 3,
        "height": 3,
    }
    uploads = [e for e in requests_log(site) if e["method"] == "POST" and e["path"] == "/v1/files"]
    assert uploads and uploads[-1]["status"] == 201
    shot(page, "playground-file-upload")


def test_playground_shows_image_outputs_and_file_links(site: LocalServer, page: Any) -> None:
    page.goto(site.base_url + "/web/local-demo/make-file")
    page.wait_for_selector("#playground[data-ready]")
    page.fill("#in-text", "an image")
    page.select_option("#in-format", label="png")
    page.fill("#in-size", "40")
    page.click("#pg-run")
    page.wait_for_selector("#pg-status.succeeded", timeout=STATE_MS)
    img = page.locator("#pg-output img")
    img.wait_for()
    assert page.evaluate("document.querySelector('#pg-output img').naturalWidth") == 40
    page.select_option("#in-format", label="txt")
    assert "-i format=txt" in page.inner_text("#pg-cli")
    page.click("#pg-run")
    page.wait_for_selector("#pg-status.succeeded", timeout=STATE_MS)
    assert page.locator("#pg-output a").inner_text() == "output.txt"
    assert page.locator("#pg-output img").count() == 0


def test_playground_renders_hostile_output_inert(site: LocalServer, page: Any) -> None:
    name = unique("hostile")
    evil = '<img src=x onerror="window.__pwned=1">' + HOSTILE

    def hostile(text: str) -> dict[str, str]:
        print(evil)
        return {"echo": text, "link": "javascript:window.__pwned=1"}

    site.register(name, hostile, description=evil)
    page.goto(f"{site.base_url}/web/{name}")
    page.wait_for_selector("#playground[data-ready]")
    page.fill("#in-text", evil)
    page.click("#pg-run")
    page.wait_for_selector("#pg-status.succeeded", timeout=STATE_MS)
    assert json.loads(page.inner_text("#pg-output pre"))["echo"] == evil
    assert page.inner_text("#pg-logs").strip() == evil
    assert page.locator("#pg-output img, #pg-output a, #pg-logs img").count() == 0
    assert page.evaluate("window.__pwned") is None
    # The prediction's own page and the model page's recent predictions are inert too.
    page.goto(site.base_url + str(page.get_attribute("#pg-link", "href")))
    assert evil in page.inner_text("#logs")
    assert page.evaluate("window.__pwned") is None
    page.goto(f"{site.base_url}/web/{name}")
    assert HOSTILE in page.locator("tr.prediction").first.inner_text()
    assert page.evaluate("window.__pwned") is None


def test_playground_asks_for_the_token_and_keeps_it_in_the_tab(browser: Any, tmp_path: Any) -> None:
    need_chromium()
    with LocalServer(token="secret-token-1") as guarded:
        context = browser.new_context()
        try:
            pg = context.new_page()
            pg.goto(guarded.base_url + "/web/replicate/hello-world")
            pg.wait_for_selector("#playground[data-ready]")
            assert pg.locator("#pg-token").get_attribute("type") == "password"
            pg.fill("#in-text", "guarded")
            pg.click("#pg-run")
            expect(pg.locator("#pg-error")).not_to_be_empty()
            assert "token" in pg.inner_text("#pg-error")
            pg.fill("#pg-token", "wrong")
            pg.click("#pg-run")
            expect(pg.locator("#pg-error")).to_contain_text("did not accept", timeout=STATE_MS)
            pg.fill("#pg-token", "secret-token-1")
            pg.click("#pg-run")
            pg.wait_for_selector("#pg-status.succeeded", timeout=STATE_MS)
            assert pg.inner_text("#pg-output") == "hello guarded"
            stored = pg.evaluate(
                "[sessionStorage.getItem('replicate-local-token'), localStorage.length, "
                "document.cookie]"
            )
            assert stored == ["secret-token-1", 0, ""]
            assert "secret-token-1" not in pg.content()  # never written into the page
            # A new tab of the same browser does not get it.
            other = context.new_page()
            other.goto(guarded.base_url + "/web/replicate/hello-world")
            other.wait_for_selector("#playground[data-ready]")
            assert other.input_value("#pg-token") == ""
        finally:
            context.close()


def test_running_prediction_logs_follow_in_the_browser(site: LocalServer, page: Any) -> None:
    """A live prediction page keeps its logs box at the newest line as lines arrive, and leaves
    it where the reader scrolled it otherwise."""
    name = unique("follow")
    go, more, finish = threading.Event(), threading.Event(), threading.Event()

    def slow(text: str) -> str:
        for i in range(100):
            print(f"early line {i}")
        assert go.wait(30)
        for i in range(50):
            print(f"late line {i}")
        assert more.wait(30)
        for i in range(50):
            print(f"more line {i}")
        assert finish.wait(30)
        return "over"

    def at_end() -> bool:
        box = page.locator(".logbox").bounding_box()
        logs = page.locator("#logs").bounding_box()
        return (
            logs["y"] < box["y"]
            and abs((logs["y"] + logs["height"]) - (box["y"] + box["height"])) < 2
        )

    site.register(name, slow)
    with api(site) as http:
        p = run(http, name, {"text": "x"}, wait=False)
        try:
            wait_until(
                lambda: "early line 99" in http.get(f"/v1/predictions/{p['id']}").json()["logs"]
            )
            page.goto(p["urls"]["web"])
            assert page.locator("#live").count() == 1
            go.set()
            expect(page.locator("#logs")).to_contain_text("late line 49", timeout=STATE_MS)
            assert at_end()
            shot(page, "prediction-live-logs", full=False)
            # The reader scrolls up to an older line: new lines no longer move the view.
            page.locator(".logbox").evaluate("box => { box.scrollTop = box.scrollTop - 300; }")
            top = page.locator("#logs").bounding_box()["y"]
            assert not at_end()
            more.set()
            expect(page.locator("#logs")).to_contain_text("more line 49", timeout=STATE_MS)
            assert abs(page.locator("#logs").bounding_box()["y"] - top) < 2
            assert not at_end()
        finally:
            go.set()
            more.set()
            finish.set()
        wait_status(http, p["id"], {"succeeded"})
    expect(page.locator("#status")).to_have_text("succeeded", timeout=STATE_MS)
    assert page.locator("#output").inner_text().strip() == "over"


@pytest.mark.timeout(240)
def test_playground_runs_a_cog_model_served_with_cog(browser: Any) -> None:
    """What a Cog model's author does: ``--cog acme/echo=DIR``, open its page, fill, Run."""
    pytest.importorskip("cog")
    echo = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "cog_echo"
    with LocalServer(cog={"acme/echo": str(echo)}, demo_models=False) as s:
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        try:
            pg = context.new_page()
            pg.goto(s.base_url + "/")
            pg.click("table.models a:text-is('acme/echo')")
            pg.wait_for_selector("#playground[data-ready]")
            assert pg.locator("#in-repeat").get_attribute("max") == "10"
            assert pg.locator("#in-ignore_cancel").get_attribute("type") == "checkbox"
            pg.fill("#in-text", "cog")
            pg.fill("#in-repeat", "2")
            assert pg.inner_text("#pg-cli") == "replicate run acme/echo -i text=cog -i repeat=2"
            pg.click("#pg-run")
            pg.wait_for_selector("#pg-status.succeeded", timeout=180_000)
            assert json.loads(pg.inner_text("#pg-output pre")) == ["cog0", "cog1"]
            assert "chunk 1" in pg.inner_text("#pg-logs")
            shot(pg, "playground-cog-model")
        finally:
            context.close()


def test_playground_cancels_a_running_prediction(site: LocalServer, page: Any) -> None:
    page.goto(site.base_url + "/web/local-demo/sleep")
    page.wait_for_selector("#playground[data-ready]")
    page.fill("#in-seconds", "600")
    page.click("#pg-run")
    expect(page.locator("#pg-logs")).to_contain_text("tick 1/", timeout=STATE_MS)
    page.click("#pg-cancel")
    page.wait_for_selector("#pg-status.canceled", timeout=STATE_MS)
    assert page.locator("#pg-cancel").is_hidden()
    assert page.locator("#pg-run").is_enabled()
