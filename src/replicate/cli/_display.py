"""Terminal display: notes and live status on stderr, results on stdout (rich does the drawing)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table


class Display:
    """Where the command writes: ``out`` for results (stdout), ``err`` for everything else."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False)
        self.quiet = quiet
        #: With ``--local``: ``(the command's own server, where `replicate serve` serves
        #: the same database)``. Pages of the first die with the command; see ``web_page``.
        self.local_server: tuple[str, str] | None = None

    def note(self, message: str) -> None:
        """A dim informational line on stderr (suppressed with --json)."""
        if not self.quiet:
            self.err.print(f"[dim]{_escape(message)}[/dim]")

    def error(self, message: str) -> None:
        """``error: <message>`` as one plain line on stderr."""
        sys.stderr.write("error: " + " ".join(message.split()) + "\n")
        sys.stderr.flush()

    def result(self, text: str) -> None:
        """Plain text on stdout, exactly as given."""
        self.out.file.write(text if text.endswith("\n") else text + "\n")
        self.out.file.flush()

    def write_chunk(self, text: str) -> None:
        """Streamed text on stdout, flushed at once."""
        self.out.file.write(text)
        self.out.file.flush()

    def json(self, value: Any) -> None:
        """Machine-readable JSON on stdout, with no decoration."""
        sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
        sys.stdout.flush()

    def json_line(self, value: Any) -> None:
        """One JSON value on one line of stdout (NDJSON), flushed at once."""
        sys.stdout.write(json.dumps(value, default=str) + "\n")
        sys.stdout.flush()

    def table(
        self,
        columns: list[str],
        rows: list[list[Any]],
        title: str | None = None,
        *,
        whole: tuple[str, ...] = ("id", "model", "field", "input", "sku"),
    ) -> None:
        """Rows on stdout: a table on a terminal, tab-separated plain rows otherwise.

        Columns named in ``whole`` (ids, model names) are never wrapped nor cut, so they can be
        copied; piped output has no header and no wrapping at all, so it can be grepped and cut.
        ``no matches`` goes to stderr when there are no rows.
        """
        if not rows:
            self.err.print("no matches")
            return
        cells = [["" if v is None else str(v) for v in row] for row in rows]
        if not self.out.is_terminal:
            for row in cells:
                self.result("\t".join(" ".join(cell.split()) for cell in row))
            return
        table = Table(title=title, show_lines=False)
        needed = 1
        for n, column in enumerate(columns):
            longest = max([len(column)] + [len(row[n]) for row in cells if n < len(row)])
            if column in whole:
                table.add_column(column, no_wrap=True, min_width=longest)
            else:  # other columns fold, but stay wide enough to read
                longest = min(longest, max(len(column), 12))
                table.add_column(column, overflow="fold", min_width=longest)
            needed += longest + 3
        for row in cells:
            table.add_row(*(_escape(cell) for cell in row))
        # Wider than the terminal rather than cutting an id: the terminal wraps the line instead.
        width = self.out.width
        if needed > width:
            self.out.width = needed
        try:
            self.out.print(table, crop=False)
        finally:
            self.out.width = width

    def web_page(self, prediction: Any) -> None:
        """The prediction's page (``urls.web``) on stderr, when the API gives one."""
        web = (getattr(prediction, "urls", None) or {}).get("web")
        if not web:
            return
        if self.local_server is not None and web.startswith(self.local_server[0] + "/"):
            # The command's server stops with it: the page lives on where `replicate serve`
            # (same database, default address) shows it.
            web = self.local_server[1] + web[len(self.local_server[0]) :]
            self.note(f"View it at {web} while `replicate serve` runs")
            return
        self.note(f"View it at {web}")

    def prediction_progress(self) -> Progress:
        """A live status line with a progress bar (shown on stderr)."""
        return Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[log]}"),
            console=self.err,
            transient=False,
            disable=self.quiet,
        )

    def download_progress(self) -> Progress:
        """A download bar on stderr: bytes of the total (``Content-Length``), percent, speed, ETA."""
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TaskProgressColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.err,
            disable=self.quiet,
        )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
