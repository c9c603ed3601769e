"""The allow-list stays reviewed: every entry is justified, well-formed and still in use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .allowlist import PARITY_BUGS, TEST_ENTRIES, TOLERANCES
from .conftest import COLLECTED_FILES

HERE = Path(__file__).resolve().parent
KINDS = {"BUG", "EXCLUSION", "DEVIATION", "SPEC_GAP", "HARNESS"}


def test_entries_are_justified() -> None:
    for key, entry in [*TEST_ENTRIES.items(), *TOLERANCES.items()]:
        assert entry.kind in KINDS, (key, entry.kind)
        assert len(entry.reason) >= 40, f"{key}: give a real reason"
        if entry.kind == "BUG":
            assert entry.reason.startswith("BUG: "), f"{key}: BUG reasons start with 'BUG: '"
            assert key in TEST_ENTRIES, f"{key}: a BUG must mark a test xfail(strict=True)"
    for key, entry in TOLERANCES.items():
        assert entry.kind != "BUG", (
            f"{key}: a bug is a TEST_ENTRIES/PARITY_BUGS entry, not a tolerance"
        )
        assert entry.id == key


def test_parity_bugs_are_well_formed() -> None:
    for bug_id, bug in PARITY_BUGS.items():
        assert bug.entry.id == bug_id
        re.compile(bug.problem)
        re.compile(bug.uri)
        recording, _, index = bug.example.rpartition("#")
        assert recording.endswith(".yaml") and index.isdigit(), bug.example


def test_every_tolerance_is_consulted() -> None:
    """A tolerance nobody asks for is dead weight (or a typo that silently disables it)."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in HERE.glob("test_*.py"))
    used = set(re.findall(r'tolerated\(\s*"([^"]+)"\s*\)', source))
    assert set(TOLERANCES) == used, {
        "unused": sorted(set(TOLERANCES) - used),
        "not on the allow-list": sorted(used - set(TOLERANCES)),
    }


def test_every_test_entry_names_a_collected_test() -> None:
    """Entries whose test file was collected must match a collected test (no stale ids)."""
    relevant = {
        key: entry for key, entry in TEST_ENTRIES.items() if key.split("::")[0] in COLLECTED_FILES
    }
    if not relevant:
        pytest.skip("no test file named by the allow-list was collected in this run")
    stale = sorted(key for key, entry in relevant.items() if not entry.matched)
    assert not stale, f"allow-list entries that match no test: {stale}"
