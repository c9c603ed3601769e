"""What the commands print: plain rows when piped, unbroken ids on a terminal, "no matches",
``predictions get`` in full, NDJSON from ``stream --json``, and a download bar with a total."""

from __future__ import annotations

import io
import json
import pathlib
from typing import Any

import pytest
from rich.console import Console

import replicate
from replicate.cli._display import Display

from .conftest import InProcess

LONG_ID = "k7q2m9x4w1z8c3v6b5n0p2r4t6y8u1"


def terminal_display(width: int) -> tuple[Display, io.StringIO, io.StringIO]:
    display = Display()
    out, err = io.StringIO(), io.StringIO()
    display.out = Console(file=out, force_terminal=True, width=width, highlight=False)
    display.err = Console(file=err, force_terminal=True, width=width, highlight=False)
    return display, out, err


def test_a_narrow_terminal_never_breaks_an_id() -> None:
    display, out, _ = terminal_display(40)
    rows = [[LONG_ID, "someone/a-rather-long-model-name", "succeeded", "2026-01-01T00:00:00Z"]]
    display.table(["id", "model", "status", "created"], rows)
    text = out.getvalue()
    assert LONG_ID in text
    assert "someone/a-rather-long-model-name" in text
    assert "succeeded" in text, "the other columns stay readable"


def test_piped_rows_are_tab_separated_and_whole(capsys: Any) -> None:
    display = Display()
    display.table(["id", "description"], [[LONG_ID, "two\nlines\tand a tab"], ["b", None]])
    out = capsys.readouterr().out
    assert out == f"{LONG_ID}\ttwo lines and a tab\nb\t\n"


def test_no_rows_say_no_matches(capsys: Any) -> None:
    Display().table(["id"], [])
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip() == "no matches"


def test_empty_lists_say_no_matches(run_main: InProcess) -> None:
    code, out, err = run_main("models", "search", "zzz-nothing-like-this")
    assert code == 0 and out == "" and err.strip() == "no matches"
    code, out, err = run_main("models", "search", "zzz-nothing-like-this", "--json")
    assert code == 0 and json.loads(out) == []


def test_predictions_list_piped_is_rows_of_whole_ids(run_main: InProcess) -> None:
    _, created, _ = run_main("run", "replicate/hello-world", "-i", "text=row", "--json")
    prediction_id = json.loads(created)["id"]
    code, out, err = run_main("predictions", "list")
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert [prediction_id, "replicate/hello-world", "succeeded"] in [row[:3] for row in rows]
    assert all(len(row) == 4 for row in rows)


def test_download_bar_uses_content_length(cli_server: Any, tmp_path: pathlib.Path) -> None:
    from replicate.cli._output import download

    client = replicate.Client(api_token=cli_server.api_token, base_url=cli_server.base_url)
    prediction = client.run("local-demo/make-file", input={"text": "bar"}, use_file_output=False)
    display, _, err = terminal_display(120)
    path = download(client, str(prediction), display, tmp_path / "picture.png")
    size = path.stat().st_size
    assert size > 0
    drawn = err.getvalue()
    assert f"{size}/{size} bytes" in drawn
    assert "100%" in drawn
    assert "?/" not in drawn


def test_predictions_get_shows_everything(run_main: InProcess, cli_server: Any) -> None:
    _, created, _ = run_main("run", "local-demo/stream-text", "-i", "prompt=a b", "--json")
    prediction = json.loads(created)
    code, out, err = run_main("predictions", "get", prediction["id"])
    assert code == 0, err
    fields = dict(line.split("\t", 1) for line in out.split("logs:")[0].splitlines())
    assert fields["id"] == prediction["id"]
    assert fields["status"] == "succeeded"
    assert fields["input.prompt"] == "a b"
    assert json.loads(fields["output"]) == prediction["output"]
    assert "metrics.predict_time" in fields
    assert "logs:\n  streaming" in out
    assert f"View it at {cli_server.base_url}/" in err
    code, out, _ = run_main("predictions", "get", prediction["id"], "--json")
    full = json.loads(out)
    assert {"input", "output", "logs", "metrics", "urls"} <= set(full)


def test_stream_json_is_ndjson_events(run_main: InProcess) -> None:
    code, out, err = run_main(
        "stream", "local-demo/stream-text", "-i", "prompt=one two", "-i", "max_tokens=2", "--json"
    )
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["data"] for e in events if e["event"] == "output"] == ["one", " two"]
    assert events[-1]["event"] == "done"
    assert err == ""


def test_stream_of_a_model_that_does_not_stream(run_main: InProcess, cli_server: Any) -> None:
    before = len(
        list(
            replicate.Client(
                api_token=cli_server.api_token, base_url=cli_server.base_url
            ).predictions.list()
        )
    )
    code, out, err = run_main("stream", "replicate/hello-world", "-i", "text=x")
    assert (code, out) == (2, "")
    assert err == (
        "error: replicate/hello-world does not stream its output (it returns string, not an "
        "iterator); use: replicate run replicate/hello-world with the same -i inputs\n"
    )
    after = replicate.Client(api_token=cli_server.api_token, base_url=cli_server.base_url)
    assert len(list(after.predictions.list())) == before


def test_stream_prints_the_web_page(run_main: InProcess, cli_server: Any) -> None:
    code, out, err = run_main(
        "stream", "local-demo/stream-text", "-i", "prompt=x", "-i", "max_tokens=1"
    )
    assert code == 0, err
    assert out == "x\n"
    assert f"View it at {cli_server.base_url}/" in err


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["predictions", "get", "nope"],
            "error: prediction 'nope' not found; list recent ones with: replicate predictions list",
        ),
        (
            ["predictions", "cancel", "nope"],
            "error: prediction 'nope' not found; list recent ones with: replicate predictions list",
        ),
        (
            ["files", "get", "nope"],
            "error: file 'nope' not found; list them with: replicate files list",
        ),
        (
            ["files", "delete", "nope"],
            "error: file 'nope' not found; list them with: replicate files list",
        ),
        (
            ["models", "get", "nobody/nothing"],
            "error: model 'nobody/nothing' not found; look for it with: replicate models search nothing",
        ),
        (
            ["models", "schema", "nobody/nothing"],
            "error: model 'nobody/nothing' not found; look for it with: replicate models search nothing",
        ),
        (
            ["run", "nobody/nothing"],
            "error: model 'nobody/nothing' not found; look for it with: replicate models search nothing",
        ),
        (
            ["stream", "nobody/nothing"],
            "error: model 'nobody/nothing' not found; look for it with: replicate models search nothing",
        ),
        (
            ["run", "replicate/hello-world:abc123"],
            "error: version 'replicate/hello-world:abc123' not found; see the latest one with: "
            "replicate models get replicate/hello-world",
        ),
    ],
)
def test_one_not_found_format(run_main: InProcess, args: list[str], line: str) -> None:
    code, out, err = run_main(*args)
    assert (code, out, err) == (1, "", line + "\n")


def test_not_found_hints_keep_local(run_main: InProcess) -> None:
    code, _, err = run_main("predictions", "get", "nope", "--local")
    assert code == 1
    assert err.splitlines()[-1].endswith("replicate predictions list --local")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["predictions", "list", "--limit", "-1"],
            "error: argument --limit: expected a whole number of at least 1, got '-1'; "
            "see 'replicate predictions list --help'",
        ),
        (
            ["files", "upload", "."],
            "error: . is a directory; give a file to upload",
        ),
        (["files", "upload", "nowhere.bin"], "error: file not found: nowhere.bin; check the path"),
        (
            ["run", "not-a-model"],
            "error: invalid model 'not-a-model': expected owner/name or owner/name:version "
            "(for example replicate/hello-world)",
        ),
    ],
)
def test_usage_errors(run_main: InProcess, args: list[str], line: str) -> None:
    code, out, err = run_main(*args)
    assert (code, out, err) == (2, "", line + "\n")


def test_files_delete_json(run_main: InProcess, tmp_path: pathlib.Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    _, out, _ = run_main("files", "upload", "f.txt", "--json")
    file_id = json.loads(out)["id"]
    code, out, err = run_main("files", "delete", file_id, "--json")
    assert code == 0, err
    assert json.loads(out) == {"id": file_id, "deleted": True}
