"""What a running model prints or logs goes to its prediction's logs, and where its
temporary files go.

``sys.stdout``/``sys.stderr`` are wrapped and a handler is added to the root logger (once,
at the first prediction); they look up the run of the current context (``current_run``,
set by the runner around a model's call) and its sink (``SINKS``). Outside a prediction,
output goes where it always went.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import Run

__all__ = [
    "SINKS",
    "capturing",
    "current_run",
    "install_capture",
    "prediction_tempdir",
    "run_tmpdir",
]

current_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "replicate_local_run", default=None
)


class _Capture:
    """stdout/stderr proxy: text written inside a prediction goes to its logs.

    Everything else (``isatty``, ``fileno``, ``encoding``, ...) is the wrapped stream's.
    """

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped

    def write(self, s: str) -> int:
        run = current_run.get()
        sink = SINKS.get(id(run)) if run is not None else None
        if sink is not None:
            sink(s)
            return len(s)
        return int(self._wrapped.write(s) or 0)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._wrapped.flush()
        except Exception:
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


SINKS: dict[int, Callable[[str], None]] = {}


class _LogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        run = current_run.get()
        sink = SINKS.get(id(run)) if run is not None else None
        if sink is not None:
            try:
                sink(self.format(record) + "\n")
            except Exception:
                pass


_handler_installed = False


def install_capture() -> None:
    """Wrap stdout/stderr and add the logging handler (once)."""
    global _handler_installed
    for name in ("stdout", "stderr"):
        cur = getattr(sys, name)
        if cur is not None and not isinstance(cur, _Capture):
            setattr(sys, name, _Capture(cur))
    if not _handler_installed:
        logging.getLogger().addHandler(_LogHandler())
        _handler_installed = True


class capturing:
    """``with capturing(run, sink):`` what the model prints or logs meanwhile goes to
    ``sink`` (the run's logs). A class, not a generator: every prediction enters one, and a
    generator-based context manager costs twice as much."""

    __slots__ = ("key", "run", "sink", "token")

    def __init__(self, run: Run, sink: Callable[[str], None]) -> None:
        self.run, self.sink = run, sink

    def __enter__(self) -> None:
        install_capture()
        self.key = id(self.run)
        SINKS[self.key] = self.sink
        self.token = current_run.set(self.run)

    def __exit__(self, *exc: object) -> None:
        current_run.reset(self.token)
        SINKS.pop(self.key, None)


def run_tmpdir(run: Run) -> Path:
    """The run's own temporary directory (made at the first ask)."""
    if run.tmpdir is None:
        run.tmpdir = Path(tempfile.mkdtemp(prefix=f"replicate-local-{run.pid}-"))
    return run.tmpdir


def prediction_tempdir() -> Path:
    """A temporary directory for the running prediction's files, removed when it ends.

    Outside a prediction (a plain call of the function), a fresh directory the caller owns.
    """
    run = current_run.get()
    if run is None:
        return Path(tempfile.mkdtemp(prefix="replicate-local-"))
    return run_tmpdir(run)
