"""The README is a user's page; the reference in docs/ is generated where it can be, and links resolve."""

import re

from flows.schemas import markdown_reference
from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_table_reference_matches_the_schemas():
    page = (ROOT / "docs" / "tables.md").read_text(encoding="utf-8")
    start, end = "<!-- tables:begin -->\n", "<!-- tables:end -->"
    section = page[page.index(start) + len(start) : page.index(end)]
    assert section == markdown_reference(), "run: python -m flows.schemas and paste into docs/tables.md"


def test_quick_start_opens_with_exactly_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.split("## Quick start", 1)[1]
    block = after.split("```", 2)[1]
    assert block.strip().splitlines() == ["make demo", "make test"]


def test_the_readme_is_a_page_not_a_log():
    assert (ROOT / "README.md").stat().st_size <= 15_000


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not re.match(r"[a-z]+:", target) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"(docs/{page.name})" in readme for page in PAGES[1:])  # the README links every page
