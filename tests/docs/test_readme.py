"""Every Python example in the README runs, against a local server, as written."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("starlette")

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)[:2]
    assert commands[0].strip() == (
        'pip install ".[local]" && replicate run --local replicate/hello-world -i text=world'
    )
    assert commands[1].strip() == 'pip install -e ".[dev]" && python -m pytest'
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1].strip() in ci, ".ci/run must call the README's test command"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_examples_run(index: int, tmp_path: pathlib.Path) -> None:
    from replicate.local import LocalServer

    code = BLOCKS[index]
    if "def test_" in code:  # a pytest example: run it with pytest and the plugin
        (tmp_path / "test_example.py").write_text(code)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    else:
        (tmp_path / "example.py").write_text(code)
        command = [sys.executable, str(tmp_path / "example.py")]
    with LocalServer(token="readme-token") as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPLICATE_")}
        env.update(REPLICATE_BASE_URL=server.base_url, REPLICATE_API_TOKEN=server.api_token)
        result = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
        )
    assert result.returncode == 0, (
        f"README example {index} failed:\n{code}\n{result.stdout}\n{result.stderr}"
    )
