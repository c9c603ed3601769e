"""``replicate run``: what is checked before a prediction is created, ``-o``, ``--json -o``, URLs.

In-process (``replicate.cli.main``) against the module's local server; a doomed command must
leave the server's prediction count unchanged.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import pytest

from .conftest import InProcess

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def models(cli_server: Any, tmp_path_factory: Any) -> None:
    from replicate.local import Input

    root = tmp_path_factory.mktemp("model-files")

    def two_files(text: str = Input(description="What to write")) -> list[pathlib.Path]:
        paths = []
        for n in (1, 2):
            path = root / f"part{n}.txt"
            path.write_text(f"{text} {n}")
            paths.append(path)
        return paths

    def lost_file(text: str = Input(description="Ignored")):  # type: ignore[no-untyped-def]
        return "http://127.0.0.1:9/lost.png"  # no output schema: it may be a file

    def url_text(text: str = Input(description="Ignored")) -> str:
        return "http://127.0.0.1:9/not-a-file"  # a string output: text, never downloaded

    def word_count(document: pathlib.Path = Input(description="A text file")) -> str:
        return f"{len(pathlib.Path(document).read_text().split())} words"

    def pick(
        colour: str = Input(description="A colour", choices=["red", "green"]),
        size: int = Input(description="How big", default=2, ge=1, le=4),
        name: str = Input(description="Who", default="x", max_length=5),
    ) -> str:
        return f"{colour} {size} {name}"

    cli_server.register("tests/two-files", two_files)
    cli_server.register("tests/lost-file", lost_file)
    cli_server.register("tests/url-text", url_text)
    cli_server.register("tests/word-count", word_count)
    cli_server.register("tests/pick", pick)


def count(cli_server: Any) -> int:
    import replicate

    client = replicate.Client(api_token=cli_server.api_token, base_url=cli_server.base_url)
    return len(list(client.predictions.list()))


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_o_names_the_file_of_one_output(run_main: InProcess, tmp_path: pathlib.Path) -> None:
    code, out, err = run_main("run", "local-demo/make-file", "-i", "text=hi", "-o", "out.png")
    assert code == 0, err
    assert out == "out.png\n"
    assert (tmp_path / "out.png").read_bytes().startswith(PNG)
    again, out, err = run_main("run", "local-demo/make-file", "-i", "text=hi", "-o", "out.png")
    assert again == 0 and out == "out.png\n", "a file named with -o is replaced"
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("given", ["pics/", "pics"])
def test_o_a_directory(run_main: InProcess, tmp_path: pathlib.Path, given: str) -> None:
    if given == "pics":
        (tmp_path / "pics").mkdir()
    code, out, err = run_main("run", "local-demo/make-file", "-i", "text=hi", "-o", given)
    assert code == 0, err
    path = pathlib.Path(out.strip())
    assert path.parent == pathlib.Path("pics") and path.read_bytes().startswith(PNG)


def test_several_outputs_make_o_a_directory(run_main: InProcess, tmp_path: pathlib.Path) -> None:
    code, out, err = run_main("run", "tests/two-files", "-i", "text=hi", "-o", "parts")
    assert code == 0, err
    paths = [pathlib.Path(line) for line in out.splitlines()]
    assert [p.read_text() for p in paths] == ["hi 1", "hi 2"]
    assert {p.parent for p in paths} == {pathlib.Path("parts")}


def test_several_outputs_and_o_an_existing_file(
    run_main: InProcess, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "taken").write_text("mine")
    code, _out, err = run_main("run", "tests/two-files", "-i", "text=hi", "-o", "taken")
    assert code == 1
    line = one_line(err)
    assert "returned 2 files but -o taken is a file" in line
    assert line.count("/v1/files/") + line.count("http") >= 2, "the output URLs are printed"
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing/out.png", "the directory of the output file missing/out.png does not exist"),
        ("afile/sub/", "cannot save outputs into afile/sub/: afile is not a directory"),
        ("afile/out.png", "the directory of the output file afile/out.png does not exist"),
    ],
)
def test_an_impossible_o_fails_before_running(
    run_main: InProcess, cli_server: Any, tmp_path: pathlib.Path, target: str, message: str
) -> None:
    (tmp_path / "afile").write_text("x")
    before = count(cli_server)
    code, _out, err = run_main("run", "local-demo/make-file", "-i", "text=hi", "-o", target)
    assert code == 2
    assert message in one_line(err)
    assert count(cli_server) == before, "a doomed command creates nothing"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_o_fails_before_running(
    run_main: InProcess, cli_server: Any, tmp_path: pathlib.Path
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    before = count(cli_server)
    code, _out, err = run_main("run", "local-demo/make-file", "-i", "text=hi", "-o", "locked/")
    assert code == 2 and "not writable" in one_line(err)
    assert count(cli_server) == before


def test_a_failed_download_prints_the_output_url(run_main: InProcess) -> None:
    code, _out, err = run_main("run", "tests/lost-file", "-i", "text=x", "-o", "out/")
    assert code == 1
    line = one_line(err)
    assert "succeeded but saving its output failed" in line
    assert "the output is at http://127.0.0.1:9/lost.png" in line


def test_text_output_is_printed_not_downloaded(run_main: InProcess, tmp_path: pathlib.Path) -> None:
    code, out, err = run_main("run", "tests/url-text", "-i", "text=x", "-o", "missing/x.txt")
    assert (code, out) == (0, "http://127.0.0.1:9/not-a-file\n"), err
    assert not (tmp_path / "missing").exists()
    code, out, err = run_main("run", "tests/url-text", "-i", "text=x", "-o", "d/", "--json")
    assert code == 0, err
    assert json.loads(out)["local_output"] == "http://127.0.0.1:9/not-a-file"


def test_json_with_o_downloads_and_lists_local_paths(run_main: InProcess) -> None:
    code, out, err = run_main("run", "tests/two-files", "-i", "text=j", "-o", "got/", "--json")
    assert code == 0, err
    prediction = json.loads(out)
    assert prediction["status"] == "succeeded"
    assert len(prediction["output"]) == 2 and prediction["output"][0].startswith("http")
    assert [pathlib.Path(p).read_text() for p in prediction["local_output"]] == ["j 1", "j 2"]


def test_json_without_o_downloads_nothing(run_main: InProcess, tmp_path: pathlib.Path) -> None:
    code, out, err = run_main("run", "local-demo/make-file", "-i", "text=hi", "--json")
    assert code == 0, err
    assert "local_output" not in json.loads(out)
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([], "error: input colour is required; add -i colour=..."),
        (
            ["colour=blue"],
            "error: input colour: 'blue' is not one of red, green; fix -i colour=...",
        ),
        (
            ["colour=red", "size=9"],
            "error: input size: 9 is out of range: must be at most 4; fix -i size=...",
        ),
        (
            ["colour=red", "name=toolong"],
            "error: input name: must be at most 5 characters long, got 7; fix -i name=...",
        ),
        (["colour=red", "size=big"], "error: input size: expected an integer, got 'big'"),
        (
            ["colour=@nowhere.txt"],
            "error: input colour: file not found: nowhere.txt; check the path",
        ),
        (["colour=@adir"], "error: input colour: adir is a directory; give a file"),
        (["shade=red"], "error: unknown input 'shade' for this model (inputs: colour, name, size)"),
        (
            ["colour"],
            "error: invalid input 'colour': expected key=value (for example -i text=hello)",
        ),
    ],
)
def test_inputs_are_checked_before_running(
    run_main: InProcess, cli_server: Any, tmp_path: pathlib.Path, inputs: list[str], message: str
) -> None:
    (tmp_path / "adir").mkdir()
    before = count(cli_server)
    args = [arg for pair in inputs for arg in ("-i", pair)]
    code, _out, err = run_main("run", "tests/pick", *args)
    assert code == 2
    assert one_line(err) == message
    assert count(cli_server) == before


def test_a_bare_key_value_says_use_i(run_main: InProcess) -> None:
    code, _out, err = run_main("run", "replicate/hello-world", "text=x")
    assert code == 2
    assert (
        one_line(err) == "error: unexpected argument 'text=x': inputs go with -i, as in: -i text=x"
    )


def test_at_file_on_a_text_input_sends_the_text(
    run_main: InProcess, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "in.txt").write_text("from a file")
    code, out, err = run_main("run", "replicate/hello-world", "-i", "text=@in.txt", "--json")
    assert code == 0, err
    prediction = json.loads(out)
    assert prediction["input"] == {"text": "from a file"}
    assert prediction["output"] == "hello from a file"


def test_at_file_on_a_file_input_uploads_it(run_main: InProcess, tmp_path: pathlib.Path) -> None:
    (tmp_path / "doc.txt").write_text("one two three")
    code, out, err = run_main("run", "tests/word-count", "-i", "document=@doc.txt", "--json")
    assert code == 0, err
    prediction = json.loads(out)
    assert prediction["output"] == "3 words"
    assert prediction["input"]["document"].startswith(("http", "data:"))


def test_local_no_wait_refuses_with_the_way_to_do_it(run_main: InProcess) -> None:
    code, _out, err = run_main(
        "run", "--local", "--no-wait", "replicate/hello-world", "-i", "text=x"
    )
    assert code == 2
    line = one_line(err)
    assert "--no-wait needs a server that outlives this command" in line
    assert "`replicate serve`" in line and "REPLICATE_BASE_URL" in line


def test_no_wait_hint_and_web_page(run_main: InProcess, cli_server: Any) -> None:
    code, out, err = run_main("run", "replicate/hello-world", "-i", "text=later", "--no-wait")
    assert code == 0, err
    prediction_id = out.strip()
    assert f"View it at {cli_server.base_url}/" in err
    assert f"Follow it with: replicate predictions get {prediction_id}" in err


def test_local_says_where_results_are_kept(run_main: InProcess, tmp_path: pathlib.Path) -> None:
    from replicate.local.core import default_db_path

    code, out, err = run_main("run", "--local", "replicate/hello-world", "-i", "text=x")
    assert code == 0, err
    assert out == "hello x\n"
    assert f"results are kept in {default_db_path()}" in " ".join(err.split())
    assert str(default_db_path()).startswith(str(tmp_path))


def test_local_points_its_web_page_where_replicate_serve_shows_it(run_main: InProcess) -> None:
    """The command's own server stops with it: its page is given at `replicate serve`'s
    default address, which serves the same database."""
    code, _out, err = run_main("run", "--local", "replicate/hello-world", "-i", "text=x")
    assert code == 0, err
    text = " ".join(err.split())
    assert "View it at http://127.0.0.1:5080/web/p/" in text
    assert "while `replicate serve` runs" in text
    own = text.split("Using a local Replicate server at ", 1)[1].split(";", 1)[0]
    assert own != "http://127.0.0.1:5080" and f"{own}/web/p/" not in text


def test_local_without_the_extra_is_one_line(run_main: InProcess, monkeypatch: Any) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    code, _out, err = run_main("run", "--local", "replicate/hello-world", "-i", "text=x")
    assert code == 2
    assert one_line(err) == (
        'error: the local server needs uvicorn, which is not installed: pip install "replicate[local]"'
    )


def test_run_prints_the_web_page(run_main: InProcess, cli_server: Any) -> None:
    code, out, err = run_main("run", "replicate/hello-world", "-i", "text=web")
    assert code == 0, err
    assert f"View it at {cli_server.base_url}/" in err
    assert out == "hello web\n"


@pytest.mark.parametrize(
    "args",
    [["run", "--local", "replicate/hello-world", "-i", "text=x"], ["serve", "--port", "0"]],
    ids=["run --local", "serve"],
)
def test_without_uvicorn_the_console_script_says_what_to_install(
    tmp_path: pathlib.Path, args: list[str]
) -> None:
    """As after a plain ``pip install .``: uvicorn cannot be imported."""
    import subprocess

    from .conftest import base_env, replicate_exe

    stub = tmp_path / "stub" / "uvicorn"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'uvicorn'\", name='uvicorn')\n"
    )
    env = base_env()
    env.update(
        PYTHONPATH=str(tmp_path / "stub"), HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "d")
    )
    result = subprocess.run(
        [*replicate_exe(), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (1, 2), result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the local server needs ")
    assert "uvicorn" in lines[0] and "replicate[local]" in lines[0]
    assert "Traceback" not in result.stderr
