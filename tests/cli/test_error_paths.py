"""Every command, walked from the argparse parser: each error path is one line and an exit code.

New commands are covered without editing this file: positionals are filled from their names.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

import pytest

from replicate.cli._errors import EXIT_UNREACHABLE, EXIT_USAGE
from replicate.cli._parser import build_parser, leaf_commands

from .conftest import InProcess

SAMPLES = {"model": "replicate/hello-world", "query": "hello", "id": "no-such-thing"}
LEAVES = [path for path, _ in leaf_commands(build_parser()) if path != ("serve",)]
GROUPS = sorted({path[:1] for path in LEAVES if len(path) > 1})


def command_line(path: tuple[str, ...], tmp_path: pathlib.Path) -> list[str]:
    """The command with a plausible value for each positional argument."""
    parser = dict(leaf_commands(build_parser()))[path]
    args = list(path)
    for action in parser._actions:
        if action.option_strings or action.nargs in ("*", "?") or action.help == argparse.SUPPRESS:
            continue
        if action.dest == "inputs":
            rows = tmp_path / "rows.jsonl"
            rows.write_text('{"text": "hi"}\n')
            args.append(str(rows))
        elif action.dest == "path":
            sample = tmp_path / "sample.txt"
            sample.write_text("sample")
            args.append(str(sample))
        else:
            args.append(SAMPLES.get(action.dest, "x"))
    if path[0] == "run":
        args += ["-i", "text=hi"]
    if path[0] == "stream":
        args = ["stream", "local-demo/stream-text", "-i", "prompt=hi"]
    return args


def assert_one_line(code: int, out: str, err: str, expected_code: int) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert code == expected_code, (code, err)
    return lines[0]


def test_the_walk_covers_every_command() -> None:
    names = {" ".join(path) for path in LEAVES}
    assert {"run", "stream", "predictions get", "files upload", "webhooks secret"} <= names
    assert len(names) >= 15


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_unreachable_api_names_the_url_and_the_variable(
    path: tuple[str, ...], run_main: InProcess, tmp_path: pathlib.Path
) -> None:
    code, out, err = run_main(
        *command_line(path, tmp_path), env={"REPLICATE_BASE_URL": "http://127.0.0.1:9"}
    )
    line = assert_one_line(code, out, err, EXIT_UNREACHABLE)
    assert "http://127.0.0.1:9 (from REPLICATE_BASE_URL)" in line
    assert "is `replicate serve` running?" in line
    assert out == ""


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_a_web_server_that_is_not_the_api(
    path: tuple[str, ...], run_main: InProcess, tmp_path: pathlib.Path, html_server: str
) -> None:
    code, out, err = run_main(
        *command_line(path, tmp_path), env={"REPLICATE_BASE_URL": html_server}
    )
    line = assert_one_line(code, out, err, EXIT_UNREACHABLE)
    assert f"the server at {html_server} (from REPLICATE_BASE_URL) is not the Replicate API" in line
    assert "HTTP 404 text/html" in line
    assert "<" not in line and "unknown model" not in line and "not found" not in line


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_no_token_with_a_base_url(
    path: tuple[str, ...], run_main: InProcess, tmp_path: pathlib.Path
) -> None:
    code, out, err = run_main(*command_line(path, tmp_path), env={"REPLICATE_API_TOKEN": None})
    line = assert_one_line(code, out, err, EXIT_USAGE)
    assert "no API token for the server at http://127.0.0.1:" in line
    assert "REPLICATE_API_TOKEN" in line and "Client(" not in line


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_no_token_and_no_base_url(
    path: tuple[str, ...], run_main: InProcess, tmp_path: pathlib.Path
) -> None:
    code, out, err = run_main(
        *command_line(path, tmp_path),
        env={"REPLICATE_API_TOKEN": None, "REPLICATE_BASE_URL": None},
    )
    line = assert_one_line(code, out, err, EXIT_USAGE)
    assert line == (
        "error: no API token: set REPLICATE_API_TOKEN (https://replicate.com/account/api-tokens) "
        "or use --local to run on a local server"
    )


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_a_base_url_that_is_not_a_url(
    path: tuple[str, ...], run_main: InProcess, tmp_path: pathlib.Path
) -> None:
    code, out, err = run_main(
        *command_line(path, tmp_path), env={"REPLICATE_BASE_URL": "localhost:5080"}
    )
    line = assert_one_line(code, out, err, EXIT_USAGE)
    assert "REPLICATE_BASE_URL is not an http(s) URL: 'localhost:5080'" in line


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_unknown_option_is_one_line(
    path: tuple[str, ...], run_main: InProcess, tmp_path: pathlib.Path
) -> None:
    code, out, err = run_main(*command_line(path, tmp_path), "--bogus")
    line = assert_one_line(code, out, err, EXIT_USAGE)
    assert "unrecognized arguments: --bogus" in line
    assert f"see 'replicate {' '.join(path)} --help'" in line


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_prints_json(path: tuple[str, ...]) -> None:
    parser = dict(leaf_commands(build_parser()))[path]
    assert "--json" in parser._option_string_actions, path


@pytest.mark.parametrize("path", [*LEAVES, *GROUPS], ids=" ".join)
def test_every_help_page_has_its_own_examples(path: tuple[str, ...], run_main: InProcess) -> None:
    code, out, err = run_main(*path, "--help")
    assert code == 0, err
    assert "Examples:" in out, path
    examples = out.split("Examples:", 1)[1]
    assert f"replicate {' '.join(path)}" in examples, (path, examples)


def test_top_level_help_documents_the_exit_codes(run_main: InProcess) -> None:
    code, out, _ = run_main("--help")
    assert code == 0
    for expected in ("exit codes:", "  0 ", "  1 ", "  2 ", "  3 ", "  130 ", "  141 "):
        assert expected in out


@pytest.mark.parametrize("group", GROUPS, ids=" ".join)
def test_a_group_without_action(group: tuple[str, ...], run_main: InProcess) -> None:
    code, out, err = run_main(*group)
    line = assert_one_line(code, out, err, EXIT_USAGE)
    assert (
        line == f"error: 'replicate {group[0]}' needs an action; see 'replicate {group[0]} --help'"
    )


def test_no_command(run_main: InProcess) -> None:
    code, out, err = run_main()
    line = assert_one_line(code, out, err, EXIT_USAGE)
    assert line == "error: the following arguments are required: COMMAND; see 'replicate --help'"


def test_an_unexpected_exception_is_one_line(run_main: InProcess, monkeypatch: Any) -> None:
    from replicate.cli import _resources

    def broken(args: Any, display: Any) -> int:
        raise RuntimeError("something odd")

    monkeypatch.setattr(_resources, "hardware", broken)
    code, out, err = run_main("hardware")
    line = assert_one_line(code, out, err, 1)
    assert line.startswith("error: unexpected RuntimeError: something odd; please report it")


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (
            PermissionError(13, "Permission denied", "/root/x"),
            1,
            "error: Permission denied: /root/x; check the path and its permissions",
        ),
        (KeyboardInterrupt(), 130, "interrupted"),
        (
            ModuleNotFoundError("No module named 'starlette'", name="starlette"),
            2,
            'error: the local server needs starlette, which is not installed: pip install "replicate[local]"',
        ),
        (
            ValueError("base_url must be a URL"),
            2,
            "error: base_url must be a URL",
        ),
    ],
)
def test_exceptions_map_to_one_line(
    run_main: InProcess, monkeypatch: Any, raised: BaseException, code: int, line: str
) -> None:
    from replicate.cli import _resources

    def broken(args: Any, display: Any) -> int:
        raise raised

    monkeypatch.setattr(_resources, "hardware", broken)
    got, out, err = run_main("hardware")
    assert (got, out, err) == (code, "", line + "\n")


def test_a_closed_pipe_is_quiet(run_main: InProcess, monkeypatch: Any) -> None:
    from replicate.cli import _resources

    def broken(args: Any, display: Any) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(_resources, "hardware", broken)
    assert run_main("hardware") == (141, "", "")


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ({"detail": "input: text is required"}, "invalid input: text is required; add -i text=..."),
        ({"detail": "input: steps: must be <= 50"}, "invalid input: steps: must be <= 50"),
    ],
)
def test_a_422_from_the_server_is_one_clear_line(body: dict[str, Any], line: str) -> None:
    from replicate.cli._errors import describe_api_error
    from replicate.exceptions import UnprocessableEntityError

    error = UnprocessableEntityError(status=422, detail=body["detail"], body=body)
    assert describe_api_error(error) == line
