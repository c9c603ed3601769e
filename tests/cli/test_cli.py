"""The ``replicate`` console script end to end: exit codes, stdout, stderr, files written."""

from __future__ import annotations

import json
import pathlib
import signal
from typing import Any

import pytest

import replicate

from .conftest import CLI, base_env


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_quickstart_local_offline_without_token(tmp_path: pathlib.Path) -> None:
    env = base_env()
    env["HOME"] = str(tmp_path)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    result = CLI(env, tmp_path)("run", "--local", "replicate/hello-world", "-i", "text=world")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello world\n"
    assert "local" in result.stderr
    assert list((tmp_path / "data").rglob("*.sqlite3")), "the quickstart keeps its on-disk database"


def test_run_prints_text_output(cli: CLI) -> None:
    result = cli("run", "replicate/hello-world", "-i", "text=there")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello there\n"


def test_run_json_is_a_prediction(cli: CLI) -> None:
    result = cli("run", "replicate/hello-world", "-i", "text=json", "--json")
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout)
    assert prediction["status"] == "succeeded"
    assert prediction["output"] == "hello json"
    assert prediction["input"] == {"text": "json"}
    assert result.stderr == ""


def test_run_no_wait_prints_the_id(cli: CLI, cli_server: Any) -> None:
    result = cli("run", "replicate/hello-world", "-i", "text=later", "--no-wait")
    assert result.returncode == 0, result.stderr
    prediction_id = result.stdout.strip()
    client = replicate.Client(api_token=cli_server.api_token, base_url=cli_server.base_url)
    assert client.predictions.get(prediction_id).wait(timeout=30).output == "hello later"


def test_file_output_is_downloaded(cli: CLI, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "out"
    result = cli("run", "local-demo/make-file", "-i", "text=pic", "-o", f"{out}/")
    assert result.returncode == 0, result.stderr
    path = pathlib.Path(result.stdout.strip())
    assert path.parent == out
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    again = cli("run", "local-demo/make-file", "-i", "text=pic", "-o", str(out))  # now a dir
    assert pathlib.Path(again.stdout.strip()) != path, "an existing file is never overwritten"


def test_file_input_is_uploaded(cli: CLI, tmp_path: pathlib.Path) -> None:
    source = tmp_path / "note.txt"
    source.write_text("uploaded")
    result = cli("files", "upload", str(source), "--json")
    assert result.returncode == 0, result.stderr
    file = json.loads(result.stdout)
    assert file["size"] == len("uploaded")
    listed = cli("files", "list", "--json")
    assert file["id"] in {f["id"] for f in json.loads(listed.stdout)}
    got = cli("files", "get", file["id"], "--json")
    assert json.loads(got.stdout)["id"] == file["id"]
    assert cli("files", "delete", file["id"]).returncode == 0
    gone = cli("files", "get", file["id"])
    assert gone.returncode == 1
    assert "not found" in one_error_line(gone.stderr)


def test_stream_prints_tokens(cli: CLI) -> None:
    result = cli("stream", "local-demo/stream-text", "-i", "prompt=one two", "-i", "max_tokens=4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "one two one two"


def test_failed_prediction_is_one_line_and_exit_1(cli: CLI) -> None:
    result = cli("run", "local-demo/fail", "-i", "message=kaput")
    assert result.returncode == 1
    assert one_error_line(result.stderr).endswith("failed: kaput")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "max_tokens=many"], "error: input max_tokens: expected an integer, got 'many'"),
        (["-i", "colour=red"], "error: unknown input 'colour'"),
        (["-i", "max_tokens=99999"], "error: input max_tokens: 99999 is out of range"),
    ],
)
def test_invalid_input_names_the_field(cli: CLI, args: list[str], message: str) -> None:
    result = cli("run", "local-demo/stream-text", "-i", "prompt=x", *args)
    assert result.returncode == 2, "a bad input is a usage error"
    line = one_error_line(result.stderr)
    assert line.startswith(message)
    assert "max_tokens" in line or "colour" in line


def test_unknown_model(cli: CLI) -> None:
    result = cli("run", "nobody/nothing-here")
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        "error: model 'nobody/nothing-here' not found; look for it with: "
        "replicate models search nothing-here"
    )


def test_no_token_says_how_to_fix(tmp_path: pathlib.Path) -> None:
    result = CLI(base_env(), tmp_path)("run", "replicate/hello-world", "-i", "text=x")
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "REPLICATE_API_TOKEN" in line and "--local" in line


def test_wrong_token_is_an_authentication_error(cli: CLI, cli_server: Any) -> None:
    env = dict(cli.env, REPLICATE_API_TOKEN="wrong")
    result = cli("account", env=env)
    assert result.returncode == 1
    assert "authentication failed" in one_error_line(result.stderr)
    assert "wrong" not in result.stderr


def test_network_down(cli: CLI) -> None:
    env = dict(cli.env, REPLICATE_BASE_URL="http://127.0.0.1:9")
    result = cli("hardware", env=env)
    assert result.returncode == 3
    assert one_error_line(result.stderr).startswith(
        "error: cannot reach the API at http://127.0.0.1:9 (from REPLICATE_BASE_URL): "
    )


def test_catalogue_commands(cli: CLI) -> None:
    hardware = cli("hardware", "--json")
    assert hardware.returncode == 0, hardware.stderr
    assert {"sku", "name"} <= set(json.loads(hardware.stdout)[0])
    account = cli("account", "--json")
    assert json.loads(account.stdout)["username"]
    secret = cli("webhooks", "secret")
    assert secret.stdout.startswith("whsec_")
    model = cli("models", "get", "replicate/hello-world", "--json")
    assert json.loads(model.stdout)["name"] == "hello-world"
    schema = cli("models", "schema", "replicate/hello-world")
    assert "text" in schema.stdout and "string" in schema.stdout
    listed = cli("models", "list", "--json")
    assert "hello-world" in {m["name"] for m in json.loads(listed.stdout)}
    found = cli("models", "search", "hello", "--json")
    assert found.returncode == 0, found.stderr
    assert "hello-world" in {m["name"] for m in json.loads(found.stdout)}


def test_predictions_commands(cli: CLI) -> None:
    created = json.loads(cli("run", "replicate/hello-world", "-i", "text=p", "--json").stdout)
    listed = cli("predictions", "list", "--json")
    assert created["id"] in {p["id"] for p in json.loads(listed.stdout)}
    got = json.loads(cli("predictions", "get", created["id"], "--json").stdout)
    assert got["output"] == "hello p"
    table = cli("predictions", "list")
    assert created["id"] in table.stdout


def test_help_everywhere_with_examples(cli: CLI) -> None:
    for args in (
        [],
        ["run"],
        ["stream"],
        ["predictions"],
        ["models"],
        ["files"],
        ["hardware"],
        ["account"],
        ["webhooks"],
    ):
        result = cli(*args, "--help")
        assert result.returncode == 0, (args, result.stderr)
        assert "usage: replicate" in result.stdout
    for args in (["run"], ["stream"], ["hardware"], ["account"], ["webhooks"], ["models"]):
        assert "Examples:" in cli(*args, "--help").stdout, args
    serve = cli("serve", "--help")
    assert serve.returncode == 0 and "--port" in serve.stdout


def test_ctrl_c_cancels_the_running_prediction(cli: CLI, cli_server: Any) -> None:
    client = replicate.Client(api_token=cli_server.api_token, base_url=cli_server.base_url)
    before = {p.id for p in client.predictions.list()}
    process = cli.popen("run", "local-demo/sleep", "-i", "seconds=60")
    try:
        prediction = _wait_for_new_prediction(client, before, "processing")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert client.predictions.get(prediction.id).wait(timeout=30).status == "canceled"


def _wait_for_new_prediction(client: Any, before: set[str], status: str) -> Any:
    for _ in range(600):
        for prediction in client.predictions.list():
            if prediction.id not in before and prediction.status == status:
                return prediction
        import time

        time.sleep(0.05)  # polling the server's state, not a timing assumption
    raise AssertionError("the CLI never started a prediction")
