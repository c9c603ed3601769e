"""The repository's documentation holds together and nothing points outside it.

- Every ``docs/<page>.md`` named in the source, the tests, the benchmarks or the top-level
  Markdown files exists, and every section cited as ``docs/<page>.md, "Section"`` is a heading
  of that page.
- Every relative Markdown link of ``README.md``, ``ARCHITECTURE.md``, ``CONTRIBUTING.md`` and
  ``docs/*.md`` reaches an existing file, and its ``#anchor`` an existing heading.
- No comment cites a section of a design document the repository does not have (the section
  sign), an issue number, or a path outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TOP_LEVEL = ["README.md", "ARCHITECTURE.md", "CONTRIBUTING.md"]

#: ``docs/page.md`` optionally followed by quoted section names: ``, "A", "B"``.
DOC_REFERENCE = re.compile(r'docs/([\w.-]+\.md)((?:,\s*"[^"\n]+")*)')
SECTION = re.compile(r'"([^"\n]+)"')
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


def code_files() -> list[Path]:
    files = [
        p
        for folder in ("src", "tests", "benchmarks")
        for p in sorted((ROOT / folder).rglob("*"))
        if p.suffix in (".py", ".md", ".toml", ".cfg") and "data" not in p.relative_to(ROOT).parts
    ]
    return files + [ROOT / name for name in TOP_LEVEL]


def markdown_files() -> list[Path]:
    return [ROOT / name for name in TOP_LEVEL] + sorted(DOCS.glob("*.md"))


def headings(page: Path) -> list[str]:
    """The page's headings, without Markdown code marks."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [h.replace("`", "") for h in HEADING.findall(text)]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_the_docs_exist() -> None:
    pages = {p.name for p in DOCS.glob("*.md")}
    for page in (
        "predictions.md",
        "retries.md",
        "streaming.md",
        "webhooks.md",
        "tokens.md",
        "local-server.md",
        "differences-from-1.0.md",
    ):
        assert page in pages
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/differences-from-1.0.md" in readme


def test_cited_pages_and_sections_exist() -> None:
    problems = []
    seen = 0
    for path in code_files():
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in DOC_REFERENCE.finditer(text):
            seen += 1
            page = DOCS / match.group(1)
            where = f"{path.relative_to(ROOT)}: docs/{match.group(1)}"
            if not page.is_file():
                problems.append(f"{where} does not exist")
                continue
            known = headings(page)
            for section in SECTION.findall(match.group(2)):
                if section.replace("`", "") not in known:
                    problems.append(f'{where} has no section "{section}"')
    assert seen > 30  # the code does cite the docs
    assert problems == []


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve(path: Path) -> None:
    problems = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        file_part, _, anchor = target.partition("#")
        page = (path.parent / file_part).resolve() if file_part else path
        if not page.exists():
            problems.append(f"{target}: no such file")
        elif anchor and page.suffix == ".md" and anchor not in {slug(h) for h in headings(page)}:
            problems.append(f"{target}: no such heading")
    assert problems == []


def test_comments_cite_nothing_outside_the_repository() -> None:
    # Spelled in pieces so that this file does not match itself under ``git grep``.
    patterns = [
        "\u00a7",  # the section sign
        "client-api" + r"\.md",
        "layout" + r"\.md",
        r"\bissues? #?\d",
        r"\.\./" + "shared",
        "/wo" + "rk/",
        "REPLICATE_" + "SHARED_DIR",
    ]
    forbidden = re.compile("|".join(patterns), re.IGNORECASE)
    found = []
    for path in code_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if forbidden.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
