"""The batch state file and results file (sans-I/O decisions plus plain file appends).

The state file is an append-only journal of JSON lines, written *before* the step it records
can be lost (see docs/batch.md, "Exactly once"):

- ``{"type": "batch", ...}``: the batch's identity (model reference, row count, shard), first;
- ``{"type": "upload", "sha256": ..., "url": ...}``: a local file uploaded once for all rows;
- ``{"type": "create", "row": i, "attempt": k, "at": <unix>, "after": <unix or null>,
  "row_sha": ..., "sent_sha": ...}``: a create is about to be sent (the intent); ``after`` is
  the server time from which its prediction would be listed;
- ``{"type": "created", "row": i, "attempt": k, "id": ..., "created_at": ...}``: its answer;
- ``{"type": "not_created", "row": i, "attempt": k, "error": ...}``: the API refused the create,
  so no prediction exists for that attempt;
- ``{"type": "done", "row": i, "id": ..., "status": ...}``: the row's prediction ended and its
  result was written;
- ``{"type": "interrupted", "row": i, "id": ...}``: the prediction was canceled by Ctrl-C; the row
  runs again on resume.

Replaying the journal gives each row's :class:`RowState`. A row whose last create has an intent
but neither ``created`` nor ``not_created`` is *uncertain*: the create may have reached the API
with its answer lost; it is reconciled against the API's prediction list before anything is
created again. A torn last line (the process died mid-write) is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Journal", "RowState", "canonical_sha", "compact_results", "replay"]


def canonical_sha(value: Any) -> str:
    """SHA-256 of a JSON value in canonical form (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class RowState:
    """What the journal says about one row."""

    row: int
    attempt: int = 0
    row_sha: str | None = None
    sent_sha: str | None = None
    intent_at: float | None = None
    after: float | None = None
    id: str | None = None
    created_at: str | None = None
    status: str | None = None
    done: bool = False
    uncertain: bool = False
    ids: list[str] = field(default_factory=list)

    @property
    def needs_create(self) -> bool:
        """No prediction is known or possible for the current attempt."""
        return not self.done and self.id is None and not self.uncertain


@dataclass
class Replayed:
    """The journal's content: the header, uploads by content hash, and row states."""

    header: dict[str, Any] | None = None
    uploads: dict[str, str] = field(default_factory=dict)
    rows: dict[int, RowState] = field(default_factory=dict)

    def row(self, index: int) -> RowState:
        """The state of row ``index`` (created empty)."""
        state = self.rows.get(index)
        if state is None:
            state = self.rows[index] = RowState(index)
        return state

    @property
    def claimed_ids(self) -> set[str]:
        """Every prediction id that belongs to some row."""
        return {pid for state in self.rows.values() for pid in state.ids}


def apply(replayed: Replayed, record: dict[str, Any]) -> None:
    """Fold one journal record into ``replayed``."""
    kind = record.get("type")
    if kind == "batch":
        replayed.header = record
        return
    if kind == "upload":
        replayed.uploads[str(record["sha256"])] = str(record["url"])
        return
    state = replayed.row(int(record["row"]))
    if kind == "create":
        state.attempt = int(record["attempt"])
        state.row_sha = record.get("row_sha")
        state.sent_sha = record.get("sent_sha")
        state.intent_at = float(record["at"])
        state.after = record.get("after")
        state.id = None
        state.created_at = None
        state.status = None
        state.done = False
        state.uncertain = True
    elif kind == "created":
        state.id = str(record["id"])
        state.created_at = record.get("created_at")
        state.uncertain = False
        if state.id not in state.ids:
            state.ids.append(state.id)
    elif kind == "not_created":
        state.uncertain = False
        state.id = None
    elif kind == "done":
        state.status = record.get("status")
        state.done = True
    elif kind == "interrupted":
        state.done = False
        state.id = None
        state.status = None


def replay(path: Path) -> Replayed:
    """Read a journal (missing file: empty).

    A line that does not parse is a record torn by a crash (the journal then goes on, after a
    restart, on a fresh line) and is skipped; a file with no record at all is refused.
    """
    replayed = Replayed()
    if not path.exists():
        return replayed
    records = torn = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or "type" not in record:
                    raise ValueError
            except ValueError:
                torn += 1
                continue
            records += 1
            apply(replayed, record)
    if torn and not records:
        raise ValueError(f"{path} is not a batch state file")
    return replayed


class Journal:
    """Appends records to the state file.

    :meth:`write` appends and flushes (a killed process loses nothing it wrote); :meth:`sync`
    makes everything written so far durable. Syncs are grouped: concurrent callers share one
    ``fsync`` run in a worker thread, so the event loop never blocks on the disk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._needs_newline = path.exists() and path.stat().st_size > 0 and not _ends_newline(path)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._written = 0
        self._synced = 0
        self._syncing: Any = None

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` and flush it to the operating system."""
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        if self._needs_newline:  # a torn line from a crash: start on a fresh line
            line = "\n" + line
            self._needs_newline = False
        self._fh.write(line + "\n")
        self._fh.flush()
        self._written += 1

    async def sync(self) -> None:
        """Return once every record written before the call is on disk (group commit)."""
        import asyncio

        target = self._written
        while self._synced < target:
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._fsync())
            await asyncio.shield(self._syncing)

    async def _fsync(self) -> None:
        import asyncio

        upto = self._written
        try:
            await asyncio.to_thread(os.fsync, self._fh.fileno())
            self._synced = max(self._synced, upto)
        finally:
            self._syncing = None

    def close(self) -> None:
        """Sync and close the file."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


def _ends_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def compact_results(path: Path) -> int:
    """Rewrite a results file in row order, keeping the last line of each row; the row count."""
    if not path.exists():
        return 0
    by_row: dict[int, str] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                by_row[int(json.loads(line)["row"])] = line
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a crash; the row is written again when it ends
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in sorted(by_row):
            fh.write(by_row[row] + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(by_row)
