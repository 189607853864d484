from flows.schemas import markdown_reference
from tests.conftest import ROOT


def test_readme_table_reference_matches_the_schemas():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- tables:begin -->\n", "<!-- tables:end -->"
    section = readme[readme.index(start) + len(start) : readme.index(end)]
    assert section == markdown_reference(), "run: python -m flows.schemas and paste into README.md"


def test_quick_start_opens_with_exactly_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.split("## Quick start", 1)[1]
    block = after.split("```", 2)[1]
    assert block.strip().splitlines() == ["make demo", "make test"]
