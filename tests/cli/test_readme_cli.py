"""The README's command-line examples run as written (placeholders like owner/model aside)."""

from __future__ import annotations

import pathlib
import re
import shlex
import subprocess
from typing import Any

import pytest

from .conftest import base_env, replicate_exe

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def cli_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The command line", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)[0]
    return [line for line in block.splitlines() if line.startswith("replicate ")]


def runnable(line: str) -> bool:
    """Placeholders (owner/model, photo.png) and the long-running server are not run."""
    return "owner/model" not in line and not line.startswith("replicate serve")


def test_the_section_has_examples() -> None:
    lines = cli_examples()
    assert sum(runnable(line) for line in lines) >= 5, lines


def test_cli_examples_run_in_order(cli_server: Any, tmp_path: pathlib.Path) -> None:
    env = base_env()
    env.update(
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        REPLICATE_BASE_URL=cli_server.base_url,
        REPLICATE_API_TOKEN=cli_server.api_token,
    )
    for line in filter(runnable, cli_examples()):
        args = shlex.split(line, comments=True)[1:]
        result = subprocess.run(
            [*replicate_exe(), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("line", [line for line in cli_examples() if not runnable(line)])
def test_placeholders_are_marked(line: str) -> None:
    assert "owner/model" in line or line.startswith("replicate serve")
