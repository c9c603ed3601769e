"""The batch journal: replay of every record kind, torn lines, and results compaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replicate._batch_state import Journal, canonical_sha, compact_results, replay


def test_canonical_sha_ignores_key_order_only() -> None:
    assert canonical_sha({"a": 1, "b": [1, 2]}) == canonical_sha({"b": [1, 2], "a": 1})
    assert canonical_sha({"a": 1}) != canonical_sha({"a": 1.5})


def test_replay_follows_each_row_through_its_records(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    journal = Journal(path)
    journal.write({"type": "batch", "ref": "a/b", "rows": 4})
    journal.write({"type": "upload", "sha256": "s1", "url": "http://x/f"})
    journal.write({"type": "create", "row": 0, "attempt": 1, "at": 1.0, "sent_sha": "x"})
    journal.write({"type": "created", "row": 0, "attempt": 1, "id": "p0"})
    journal.write({"type": "done", "row": 0, "id": "p0", "status": "succeeded"})
    journal.write({"type": "create", "row": 1, "attempt": 1, "at": 2.0, "sent_sha": "y"})
    journal.write({"type": "create", "row": 2, "attempt": 1, "at": 3.0})
    journal.write({"type": "not_created", "row": 2, "attempt": 1, "error": "422"})
    journal.write({"type": "create", "row": 3, "attempt": 1, "at": 4.0})
    journal.write({"type": "created", "row": 3, "attempt": 1, "id": "p3"})
    journal.write({"type": "interrupted", "row": 3, "id": "p3"})
    journal.close()
    state = replay(path)
    assert state.header is not None and state.header["ref"] == "a/b"
    assert state.uploads == {"s1": "http://x/f"}
    row0, row1, row2, row3 = (state.rows[i] for i in range(4))
    assert row0.done and row0.status == "succeeded" and row0.id == "p0"
    assert row1.uncertain and row1.id is None and row1.sent_sha == "y" and row1.intent_at == 2.0
    assert row2.needs_create and not row2.uncertain
    assert row3.needs_create and row3.ids == ["p3"]  # interrupted: runs again, id kept as claimed
    assert state.claimed_ids == {"p0", "p3"}


def test_a_torn_last_line_is_ignored_and_the_next_write_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    path.write_text('{"type":"create","row":0,"attempt":1,"at":1}\n{"type":"crea')
    assert replay(path).rows[0].uncertain
    journal = Journal(path)
    journal.write({"type": "created", "row": 0, "attempt": 1, "id": "p"})
    journal.close()
    assert replay(path).rows[0].id == "p"


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    path.write_text("row,text\n1,hello\n")
    with pytest.raises(ValueError, match="not a batch state file"):
        replay(path)


def test_compaction_sorts_by_row_and_keeps_the_last_line_of_each(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    lines = [{"row": 2, "v": 1}, {"row": 0, "v": 1}, {"row": 2, "v": 2}, {"row": 1, "v": 1}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"row": 3, "v"')
    assert compact_results(path) == 3
    assert [json.loads(x) for x in path.read_text().splitlines()] == [
        {"row": 0, "v": 1},
        {"row": 1, "v": 1},
        {"row": 2, "v": 2},
    ]
    assert compact_results(tmp_path / "missing.jsonl") == 0


def test_concurrent_syncs_share_one_fsync_and_cover_every_earlier_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import os

    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    journal = Journal(tmp_path / "state.jsonl")

    async def go() -> None:
        journal.write({"type": "batch"})
        journal.write({"type": "create", "row": 0, "attempt": 1, "at": 1.0})
        await asyncio.gather(journal.sync(), journal.sync(), journal.sync())
        assert len(calls) == 1
        await journal.sync()  # nothing new written: no second fsync
        assert len(calls) == 1
        journal.write({"type": "created", "row": 0, "attempt": 1, "id": "p"})
        await journal.sync()
        assert len(calls) == 2

    asyncio.run(go())
    journal.close()
    assert replay(tmp_path / "state.jsonl").rows[0].id == "p"
