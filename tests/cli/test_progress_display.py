"""The live progress bar, recorded from a real terminal (a pty): it advances with the model."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import threading
from typing import Any

import pytest

from .conftest import base_env, replicate_exe

STEPS = 4


@pytest.fixture
def progress_model(cli_server: Any) -> list[threading.Event]:
    """A model that logs tqdm-style progress, one step each time the test releases it."""
    from replicate.local import Input

    gates = [threading.Event() for _ in range(STEPS)]

    def progress(label: str = Input(default="work", description="What to report")) -> str:
        for i, gate in enumerate(gates, start=1):
            if not gate.wait(60):
                raise RuntimeError("the test never released this step")
            bar = "#" * (i * 10 // STEPS)
            print(f"{i * 100 // STEPS:3d}%|{bar:<10}| {i}/{STEPS} [00:0{i}<00:00, 1.00it/s]")
        return f"{label} done"

    cli_server.register("tests/progress", progress)
    return gates


class Terminal:
    """Runs a command on a pty and keeps everything it drew."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        self.screen = b""
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if not ready:
                if self.process.poll() is not None:
                    break
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                break
            if not data:
                break
            with self.changed:
                self.screen += data
                self.changed.notify_all()

    def wait_for(self, text: bytes, start: int = 0, timeout: float = 60) -> int:
        """Block until ``text`` appears after offset ``start``; returns where it ends."""
        with self.changed:
            ok = self.changed.wait_for(lambda: text in self.screen[start:], timeout)
        assert ok, f"never drew {text!r}; screen: {self.screen[-800:]!r}"
        return self.screen.index(text, start) + len(text)


def test_progress_bar_advances_in_a_terminal(
    cli_server: Any, progress_model: list[threading.Event]
) -> None:
    env = base_env()
    env.update(
        REPLICATE_BASE_URL=cli_server.base_url,
        REPLICATE_API_TOKEN=cli_server.api_token,
        REPLICATE_POLL_INTERVAL="0.05",
        TERM="xterm-256color",
        COLUMNS="120",
        LINES="30",
    )
    env.pop("NO_COLOR", None)
    terminal = Terminal([*replicate_exe(), "run", "tests/progress", "-i", "label=job"], env)
    try:
        offset = terminal.wait_for(b"processing")
        for i, gate in enumerate(progress_model, start=1):
            gate.set()
            offset = terminal.wait_for(f"{i * 100 // STEPS}%".encode(), offset)
        terminal.wait_for(b"job done")
        assert terminal.process.wait(timeout=60) == 0
    finally:
        for gate in progress_model:
            gate.set()
        terminal.process.kill()
        terminal.reader.join(timeout=5)
        os.close(terminal.master)
    drawn = terminal.screen.decode(errors="replace")
    percentages = [p for p in ("25%", "50%", "75%", "100%") if p in drawn]
    assert percentages == ["25%", "50%", "75%", "100%"]
    assert "\x1b[" in drawn, "a live display redraws the line in place"
