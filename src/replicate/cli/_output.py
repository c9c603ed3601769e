"""Where ``run`` saves file outputs (``-o``), checked before the prediction is created.

``-o`` names a file (one output) or a directory: an existing directory, a path ending in ``/``,
or any path when the model returns several files. Nothing that cannot work costs a prediction:
the target is checked first, and when a download fails afterwards the output URLs are printed.
"""

from __future__ import annotations

import os
import pathlib
import re
from typing import Any

from ._display import Display
from ._errors import EXIT_FAILED, EXIT_USAGE, CLIError

FILE_URL = re.compile(r"^(https?://\S+|data:[^,]*,.*)$", re.DOTALL)


class OutputTarget:
    """The ``-o`` argument: where file outputs go."""

    def __init__(self, raw: str | None) -> None:
        self.raw = raw if raw else "."
        self.path = pathlib.Path(self.raw).expanduser()
        self.directory = raw is None or self.path.is_dir() or self.raw.endswith(("/", os.sep))

    def check(self) -> None:
        """Fail now, before anything runs, if files cannot be written where asked."""
        if self.directory:
            _check_creatable_dir(self.path, self.raw)
            return
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise CLIError(
                f"cannot write the output file {self.raw}: permission denied; choose another "
                "with -o",
                EXIT_USAGE,
            )
        parent = self.path.parent
        if not parent.is_dir():
            raise CLIError(
                f"the directory of the output file {self.raw} does not exist: {parent}; "
                f"create it (mkdir -p {parent}) or choose another -o",
                EXIT_USAGE,
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CLIError(
                f"cannot write into {parent} (for -o {self.raw}): permission denied; choose "
                "another -o",
                EXIT_USAGE,
            )

    def place(self, url: str, count: int) -> pathlib.Path:
        """The path to write ``url`` to (one of ``count`` file outputs)."""
        from replicate.helpers import file_name_from_url

        if not self.directory and count == 1:
            return self.path
        if not self.directory and self.path.exists() and not self.path.is_dir():
            raise CLIError(
                f"the model returned {count} files but -o {self.raw} is a file; give a "
                "directory (for example -o out/)",
                EXIT_FAILED,
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.directory = True
        return free_path(self.path / file_name_from_url(url))


def _check_creatable_dir(path: pathlib.Path, raw: str) -> None:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CLIError(
            f"cannot save outputs into {raw}: {existing} is not a directory; choose another -o",
            EXIT_USAGE,
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CLIError(
            f"cannot save outputs into {raw}: {existing} is not writable; choose another -o",
            EXIT_USAGE,
        )


def file_urls(value: Any) -> list[str]:
    """Every file URL in an output, in order."""
    if isinstance(value, str):
        return [value] if FILE_URL.match(value) else []
    if isinstance(value, list):
        return [url for item in value for url in file_urls(item)]
    if isinstance(value, dict):
        return [url for item in value.values() for url in file_urls(item)]
    return []


def save_output(
    client: Any, output: Any, display: Display, target: OutputTarget, prediction_id: str
) -> Any:
    """The output with each file URL replaced by the local path it was saved to.

    A failed download (or write) is one line that still names every output URL.
    """
    urls = file_urls(output)
    saved: dict[str, str] = {}
    try:
        for url in urls:
            if url not in saved:
                saved[url] = str(download(client, url, display, target.place(url, len(urls))))
    except Exception as exc:
        from ._main import describe

        reason, _ = describe(exc)
        where = ", ".join(u if not u.startswith("data:") else "(a data: URL)" for u in urls)
        raise CLIError(
            f"prediction {prediction_id} succeeded but saving its output failed: "
            f"{reason or exc}; the output is at {where} "
            f"(see `replicate predictions get {prediction_id} --json`)",
            EXIT_FAILED,
        ) from None
    return _replace(output, saved)


def _replace(value: Any, saved: dict[str, str]) -> Any:
    if isinstance(value, str):
        return saved.get(value, value)
    if isinstance(value, list):
        return [_replace(v, saved) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, saved) for k, v in value.items()}
    return value


def download(client: Any, url: str, display: Display, path: pathlib.Path) -> pathlib.Path:
    """Save one file output to ``path`` with a progress bar sized by ``Content-Length``."""
    from replicate.helpers import FileOutput

    tmp = path.with_name(path.name + ".part")
    file = FileOutput(url, client)
    try:
        with display.download_progress() as bar:
            task = bar.add_task(path.name, total=None)
            with open(tmp, "wb") as f:
                for chunk in file:
                    if bar.tasks[0].total is None:
                        bar.update(task, total=_content_length(file))
                    f.write(chunk)
                    bar.advance(task, len(chunk))
                if bar.tasks[0].total is None:
                    bar.update(task, total=bar.tasks[0].completed)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _content_length(file: Any) -> int | None:
    response = getattr(file, "_response", None)
    value = response.headers.get("content-length") if response is not None else None
    return int(value) if value and value.isdigit() else None


def free_path(path: pathlib.Path) -> pathlib.Path:
    """``path``, or ``name-1.ext``, ``name-2.ext`` ...: never overwrite a file in a directory."""
    if not path.exists() and not path.with_name(path.name + ".part").exists():
        return path
    for n in range(1, 10_000):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise CLIError(f"too many files named like {path}; choose another -o")


def render_output(
    client: Any,
    prediction: Any,
    display: Display,
    target: OutputTarget,
    concatenate: bool,
    *,
    files: bool = True,
) -> None:
    """Print text output; save file outputs where ``-o`` says and print their paths.

    ``files=False`` (the schema says the output is text or numbers) prints URL-like text as is.
    """
    output = prediction.output
    if output is None:
        return
    if concatenate and isinstance(output, list) and all(isinstance(x, str) for x in output):
        display.result("".join(output))
        return
    saved = save_output(client, output, display, target, prediction.id) if files else output
    if isinstance(saved, str):
        display.result(saved)
    elif isinstance(saved, list) and all(isinstance(x, str) for x in saved):
        for item in saved:
            display.result(item)
    else:
        display.json(saved)
