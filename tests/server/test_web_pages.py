"""The front page, the model page's README, outputs and playground form, the ``serve`` banner
and the file-taking demo model, as HTML over real sockets (the browser tests are in
``test_web_browser.py``)."""

from __future__ import annotations

import asyncio
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

import replicate
from replicate.local.cli import banner
from replicate.local.demo_models import _image_size, _png
from replicate.local.schema import ConcatenateIterator, Input
from replicate.local.server import LocalServer
from replicate.local.web.markdown import render_markdown
from replicate.local.web.playground import cli_command, python_call

from .helpers import unique
from .web_helpers import HOSTILE, Tags, assert_inert, run, web


def page_tags(r: httpx.Response) -> Tags:
    """A page checked to be inert; model pages carry one script with the CSP's nonce."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1]
    return assert_inert(r.text, scripts=r.text.count("<script"), csp=csp)


# ---------------------------------------------------------------------------- the front page


def test_index_is_html_with_models_and_recent_predictions(
    server: LocalServer, http: httpx.Client
) -> None:
    p = run(http, "replicate/hello-world", {"text": HOSTILE})
    r = web(server.base_url + "/")
    assert HOSTILE not in r.text
    tags = page_tags(r)
    assert not tags.all("script")
    links = {a.get("href") for a in tags.all("a")}
    assert {"/web/replicate/hello-world", "/web/local-demo/file-info", f"/web/p/{p['id']}"} <= links
    assert f"hello {HOSTILE}" in r.text.replace("&lt;", "<").replace("&gt;", ">")
    assert f"REPLICATE_BASE_URL={server.base_url}" in tags.by_id["usage"]


def test_index_answers_json_to_clients_that_ask_for_it(server: LocalServer) -> None:
    r = httpx.get(server.base_url + "/", headers={"Accept": "application/json"}, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["api"] == server.base_url + "/v1"
    assert doc["models"]["replicate/hello-world"] == server.base_url + "/web/replicate/hello-world"
    browser = {"Accept": "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8"}
    assert (
        httpx.get(server.base_url + "/", headers=browser)
        .headers["content-type"]
        .startswith("text/html")
    )


def test_index_with_tokens_lists_no_predictions_nor_private_models() -> None:
    with LocalServer(token="tok-1") as s:
        s.register("acme/secret", lambda text: text, visibility="private")
        with httpx.Client(
            base_url=s.base_url, headers={"Authorization": "Bearer tok-1"}, timeout=30
        ) as http:
            p = run(http, "replicate/hello-world", {"text": "hidden"})
        r = web(s.base_url + "/")
        page_tags(r)
        assert p["id"] not in r.text and "Recent predictions" not in r.text
        assert "acme/secret" not in r.text and "replicate/hello-world" in r.text
        assert "tok-1" not in r.text


# ---------------------------------------------------------------------------- README as Markdown


@pytest.mark.parametrize(
    ("source", "absent"),
    [
        ("<script>alert(1)</script>", "<script"),
        ("<img src=x onerror=alert(1)>", "<img"),
        ("[x](javascript:alert(1))", "href"),
        ("[x](JAVASCRIPT:alert(1))", "href"),
        ("[x](java&#x09;script:alert(1))", "href"),
        ("[x](java%09script:alert(1))", "href"),
        ("[x](vbscript:msgbox)", "href"),
        ("[x](data:text/html,<b>hi</b>)", "href"),
        ("![x](data:image/svg+xml,<svg onload=alert(1)>)", "<img"),
        ("<javascript:alert(1)>", "href"),
        ('[x](https://e.com "a\\" onmouseover=\\"alert(1)")', None),
    ],
)
def test_markdown_keeps_raw_html_and_script_links_out(source: str, absent: str | None) -> None:
    out = render_markdown(source)
    if absent is not None:
        assert absent not in out, out
    assert_inert(out)  # and no on* attribute anywhere


def test_markdown_renders_commonmark_tables_and_safe_links() -> None:
    out = render_markdown(
        "# Title\n\n*em* `code` ~~gone~~\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "[site](https://example.com) [page](/web/a/b) [mail](mailto:a@b.c) "
        "![img](https://example.com/a.png)\n"
    )
    tags = Tags(out)
    assert [t for t, _ in tags.tags][:1] == ["h1"]
    assert {"em", "code", "s", "table", "img"} <= {t for t, _ in tags.tags}
    hrefs = [a["href"] for a in tags.all("a")]
    assert hrefs == ["https://example.com", "/web/a/b", "mailto:a@b.c"]
    assert all(a["rel"] == "noopener noreferrer nofollow" for a in tags.all("a"))


def test_model_page_renders_the_readme_as_markdown(server: LocalServer) -> None:
    name = unique("readme")
    server.register(
        name,
        lambda text: text,
        readme=f"# Big {HOSTILE}\n\n- [docs](https://example.com)\n- [bad](javascript:x)\n",
    )
    r = web(f"{server.base_url}/web/{name}")
    tags = page_tags(r)
    assert HOSTILE not in r.text
    assert f"Big {HOSTILE}" in tags.by_id["readme"]
    assert "<h1>Big &lt;script&gt;" in r.text
    readme_links = re.findall(r'href="([^"]*)"', r.text.split('id="readme"')[1])
    assert readme_links == ["https://example.com"]


# ---------------------------------------------------------------------------- outputs in lists


def test_recent_predictions_show_their_outputs(server: LocalServer, http: httpx.Client) -> None:
    png = run(http, "local-demo/make-file", {"text": "thumb", "size": 10})
    txt = run(http, "local-demo/make-file", {"text": "file text", "format": "txt"})
    r = web(f"{server.base_url}/web/local-demo/make-file")
    tags = page_tags(r)
    thumbs = [a for a in tags.all("img") if a.get("class") == "thumb"]
    assert png["output"] in [a["src"] for a in thumbs]
    assert txt["output"] in [a.get("href") for a in tags.all("a")]
    run(http, "local-demo/stream-text", {"prompt": "a b", "max_tokens": 3, "delay_ms": 0})
    r = web(f"{server.base_url}/web/local-demo/stream-text")
    assert "a b a" in r.text  # the streamed tokens, joined
    long = run(http, "replicate/hello-world", {"text": "y" * 1000})
    r = web(f"{server.base_url}/web/replicate/hello-world")
    assert long["id"] in r.text and "hello " + "y" * 190 in r.text and "y" * 400 not in r.text


# ---------------------------------------------------------------------------- playground form


def kitchen_sink(
    prompt: str = Input(description="What to say"),
    steps: int = Input(default=20, ge=1, le=50, description="Steps"),
    scale: float = Input(default=7.5, ge=0, le=20),
    seed: int = Input(default=None, description="Random seed"),
    fast: bool = Input(default=True),
    mode: Literal["a", "b", "c"] = Input(default="b"),
    image: Path = Input(description="An image"),
    extra: list[str] = Input(default=None),
) -> str:
    return prompt


def test_playground_form_follows_the_input_schema(server: LocalServer) -> None:
    name = unique("form")
    server.register(name, kitchen_sink)
    tags = page_tags(web(f"{server.base_url}/web/{name}"))
    fields = {a["data-name"]: a for a in tags.all("div") if "data-kind" in a}
    assert {k: v["data-kind"] for k, v in fields.items()} == {
        "prompt": "string",
        "steps": "integer",
        "scale": "number",
        "seed": "integer",
        "fast": "boolean",
        "mode": "enum",
        "image": "file",
        "extra": "array",
    }
    assert "data-required" in fields["prompt"] and "data-required" in fields["image"]
    inputs = {a.get("id"): a for a in tags.all("input") + tags.all("textarea") + tags.all("select")}
    assert inputs["in-steps"]["type"] == "number" and inputs["in-steps"]["value"] == "20"
    assert (inputs["in-steps"]["min"], inputs["in-steps"]["max"]) == ("1", "50")
    assert inputs["in-steps"]["step"] == "1" and inputs["in-scale"]["step"] == "any"
    ranges = [a for a in tags.all("input") if a.get("type") == "range"]
    assert {a["data-for"] for a in ranges} == {"in-steps", "in-scale"}
    assert "checked" in inputs["in-fast"] and inputs["in-fast"]["type"] == "checkbox"
    assert "required" in inputs["in-prompt"]
    assert inputs["in-image"]["type"] == "file" and inputs["url-image"]["type"] == "url"
    options = [a for a in tags.all("option")]
    assert [o["value"] for o in options] == ["0", "1", "2"]
    assert "selected" in options[1]
    assert inputs["in-mode"]["data-choices"] == '["a", "b", "c"]'
    form = next(a for a in tags.all("form"))
    assert form["data-model"] == name and form["id"] == "playground"
    assert not any(a.get("id") == "pg-token" for a in tags.all("input"))  # any token works


def test_playground_form_renders_hostile_schema_text_inert(server: LocalServer) -> None:
    name = unique("evil")

    def evil(
        text: str = Input(default=HOSTILE, description=HOSTILE),
        choice: Literal["<b>x</b>", '"><script>alert(1)</script>'] = Input(default="<b>x</b>"),
    ) -> str:
        return text

    server.register(name, evil, description=HOSTILE)
    r = web(f"{server.base_url}/web/{name}")
    assert HOSTILE not in r.text and "<b>x</b>" not in r.text
    tags = page_tags(r)
    assert tags.by_id["in-text"] == HOSTILE
    (select,) = tags.all("select")
    assert '"><script>alert(1)</script>' in select["data-choices"]


def test_playground_asks_for_a_token_when_the_server_has_tokens() -> None:
    with LocalServer(token="tok-2") as s:
        r = web(s.base_url + "/web/replicate/hello-world")
        tags = page_tags(r)
        token = next(a for a in tags.all("input") if a.get("id") == "pg-token")
        assert token["type"] == "password" and token["autocomplete"] == "off"
        assert tags.all("form")[0]["data-token"] == "required"
        assert "tok-2" not in r.text


def test_equivalent_command_line_and_python_call() -> None:
    inputs: dict[str, Any] = {"text": "it's a test", "n": 3, "ok": False, "xs": [1, "a"]}
    assert cli_command("a/b", inputs) == (
        "replicate run a/b -i 'text=it'\\''s a test' -i n=3 -i ok=false -i 'xs=[1,\"a\"]'"
    )
    code = python_call("a/b", inputs)
    namespace: dict[str, Any] = {}
    body = code.split("input=", 1)[1].rsplit(",\n)", 1)[0]
    exec(f"value = {body}", namespace)
    assert namespace["value"] == inputs
    assert python_call("a/b", {}).count("input={}") == 1


def test_the_model_page_shows_the_examples_command_line(server: LocalServer) -> None:
    tags = page_tags(web(server.base_url + "/web/replicate/hello-world"))
    assert tags.by_id["pg-cli"] == "replicate run replicate/hello-world -i text=world"
    assert '"text": "world",' in tags.by_id["pg-python"]


# ---------------------------------------------------------------------------- serve banner


def test_banner_names_the_index_and_the_pages() -> None:
    lines = banner("http://127.0.0.1:5080", "tok", "/tmp/x.db", ["acme/echo=./m"])
    text = "\n".join(lines)
    assert "  http://127.0.0.1:5080/  models and recent predictions" in lines
    assert "http://127.0.0.1:5080/web/OWNER/NAME" in text
    assert "  http://127.0.0.1:5080/web/acme/echo  try your Cog model" in lines
    assert lines[-1] == "Database: /tmp/x.db"


@pytest.mark.timeout(60)
def test_serve_prints_the_index_url_that_serves_the_index() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "replicate.local", "--port", "0", "--db", ":memory:"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    printed = []
    try:
        for line in proc.stdout:
            printed.append(line)
            if line.startswith("Database:"):
                break
        index = next(
            (
                ln.split()[0]
                for ln in printed
                if ln.strip().endswith("models and recent predictions")
            ),
            None,
        )
        assert index is not None and index.endswith("/"), "".join(printed)
        r = httpx.get(index, timeout=30)
        assert r.status_code == 200 and "<h1>Local Replicate server</h1>" in r.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ---------------------------------------------------------------------------- file-info demo model


def _gif(w: int, h: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", w, h) + b"\x00\x00\x00;"


def _jpeg(w: int, h: int) -> bytes:
    app0 = (
        b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    )
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_png((1, 2, 3), 5), ("image/png", 5, 5)),
        (_gif(7, 9), ("image/gif", 7, 9)),
        (_jpeg(40, 30), ("image/jpeg", 40, 30)),
        (b"hello", None),
        (b"\x89PNG\r\n\x1a\n", None),  # a truncated PNG is no image
    ],
)
def test_image_headers_are_read_by_hand(data: bytes, expected: Any) -> None:
    assert _image_size(data) == expected


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_file_info_takes_an_uploaded_file(server: LocalServer, mode: str, tmp_path: Path) -> None:
    client = replicate.Client(api_token="t", base_url=server.base_url)
    text = tmp_path / "notes.txt"
    text.write_text("three little words\nand two\n")
    image = tmp_path / "pic.gif"
    image.write_bytes(_gif(12, 34))
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\xff\xfe\x00\x81")

    def call(path: Path) -> Any:
        if mode == "sync":
            return client.run("local-demo/file-info", input={"file": path})
        return asyncio.run(client.async_run("local-demo/file-info", input={"file": path}))

    assert call(text) == {
        "name": "notes.txt",
        "size": 27,
        "type": "text/plain",
        "lines": 2,
        "words": 5,
    }
    assert call(image) == {
        "name": "pic.gif",
        "size": 14,
        "type": "image/gif",
        "width": 12,
        "height": 34,
    }
    assert call(blob) == {"name": "blob.bin", "size": 4, "type": "application/octet-stream"}


def test_streamed_model_output_marks_the_playground_as_text(server: LocalServer) -> None:
    name = unique("txt")

    def words(prompt: str) -> ConcatenateIterator[str]:
        yield prompt

    server.register(name, words)
    tags = page_tags(web(f"{server.base_url}/web/{name}"))
    assert tags.all("form")[0]["data-output"] == "concat"
