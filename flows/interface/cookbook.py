"""The cookbook: queries.sql (package data) run against a warehouse and shown with its output.

Takes the queries file (each query after a `-- name: Title` line, its other comment lines as
its explanation) and a warehouse; gives the Markdown of docs/cookbook.md's generated section.
`python -m flows.interface.cookbook WAREHOUSE` rewrites that section from a sample build (`make demo`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from flows.interface.common import render_table
from flows.warehouse import Warehouse, query

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cookbook.md"  # in a checkout
QUERIES = Path(__file__).with_name("queries.sql")
BEGIN, END = "<!-- cookbook:begin -->", "<!-- cookbook:end -->"


@dataclass(frozen=True)
class Recipe:
    title: str
    notes: str
    sql: str


def recipes(text: str | None = None) -> list[Recipe]:
    text = QUERIES.read_text(encoding="utf-8") if text is None else text
    found = []
    for chunk in text.split("-- name: ")[1:]:
        title, _, body = chunk.partition("\n")
        lines = body.strip().splitlines()
        notes = [line.removeprefix("--").strip() for line in lines if line.startswith("--")]
        sql = "\n".join(line for line in lines if not line.startswith("--")).strip()
        found.append(Recipe(title.strip(), " ".join(notes), sql))
    return found


def markdown(wh: Warehouse) -> str:
    parts = []
    for number, recipe in enumerate(recipes(), start=1):
        columns, rows = query(wh, recipe.sql)
        parts += [f"**{number}. {recipe.title}.**" + (f" {recipe.notes}" if recipe.notes else ""), "",
                  "```sql", recipe.sql, "```", "", "```", render_table(columns, rows), "```", ""]
    return "\n".join(parts)


def replace_section(readme: str, section: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + section + readme[end:]


if __name__ == "__main__":
    PAGE.write_text(replace_section(PAGE.read_text(), markdown(Warehouse(Path(sys.argv[1])))))
