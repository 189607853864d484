"""Every cookbook query runs on the sample build, and docs/cookbook.md shows what it prints."""

import pytest

from flows.interface import cookbook
from flows.warehouse import Warehouse, query
from tests.conftest import ROOT


def test_there_is_a_dozen_recipes_with_titles():
    titles = [r.title for r in cookbook.recipes()]
    assert len(titles) == 12 and len(set(titles)) == 12
    assert "A concordance of \"socialism in one country\"" in titles


@pytest.mark.parametrize("recipe", cookbook.recipes(), ids=lambda r: r.title)
def test_every_recipe_runs_and_returns_rows(sample_warehouse, recipe):
    columns, rows = query(Warehouse(sample_warehouse), recipe.sql)
    assert columns and rows, recipe.title


def test_the_readme_shows_what_the_queries_print(sample_warehouse):
    page = (ROOT / "docs" / "cookbook.md").read_text()
    expected = cookbook.replace_section(page, cookbook.markdown(Warehouse(sample_warehouse)))
    assert page == expected, "run: python -m flows.interface.cookbook WAREHOUSE (a build of raw/sample)"


def test_recipes_are_read_from_name_lines():
    text = "-- header\n-- name: One\n-- why\nSELECT 1;\n\n-- name: Two\nSELECT 2\nFROM t;\n"
    assert cookbook.recipes(text) == [
        cookbook.Recipe("One", "why", "SELECT 1;"), cookbook.Recipe("Two", "", "SELECT 2\nFROM t;"),
    ]
