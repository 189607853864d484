"""What every `corpus` command shares: the warehouse and output options, errors and tables.

Takes nothing from the commands themselves (both `cli` and `desk` import this module, never
each other's commands); gives click options, `fail` (one line on stderr, exit 1) and `emit`
(rows as an aligned table, CSV or JSON).
"""

from __future__ import annotations

import csv
import functools
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import click

from flows import warehouse


def warehouse_options(command):
    """--warehouse DIR and --catalog URL, handed to the command as one Warehouse `wh`."""

    @functools.wraps(command)
    def with_warehouse(*args, warehouse_dir: Path, catalog: str | None, **kwargs):
        try:
            wh = warehouse.Warehouse(warehouse_dir, catalog)
        except warehouse.WarehouseError as exc:
            fail(str(exc))
        return command(*args, wh=wh, **kwargs)

    catalog_option = click.option(
        "--catalog", default=None, envvar="CORPUS_CATALOG", metavar="postgresql://USER@HOST:PORT/DB",
        help="Keep the DuckLake catalog in this PostgreSQL database (data files stay in the warehouse "
             "folder, which must be at the same path on every host). Needed once: the folder remembers it.",
    )
    folder_option = click.option(
        "--warehouse", "warehouse_dir", type=click.Path(file_okay=False, path_type=Path),
        default="warehouse", envvar="CORPUS_WAREHOUSE", show_default=True,
        help="Warehouse folder (DuckLake catalog, data files, staging, releases).",
    )
    return folder_option(catalog_option(with_warehouse))


collection_option = click.option(
    "--collection", default=None, metavar="NAME",
    help="Write RAW_DIR as collection NAME of a shared warehouse (one per host or scrape).",
)
def _use_detector(context, parameter, value: str | None) -> str | None:
    """--lang-detector: the rules' language detector for this process and the workers it starts."""
    if value:
        from flows.stages.rules import use_detector

        use_detector(value)
    return value


lang_detector_option = click.option(
    "--lang-detector", type=click.Choice(["fasttext", "langdetect"]), default=None, expose_value=False,
    callback=_use_detector, is_eager=True,
    help="Language detector (default: rules.toml [language] detector, fasttext). Part of the pipeline "
         "version: a change reprocesses the documents.",
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)




def printable(text: str) -> str:
    """One terminal line: a file name with a newline or escape codes is shown quoted."""
    return text if text.isprintable() else repr(text)


def fail(message: str) -> None:
    click.echo(f"corpus: error: {message}", err=True)
    sys.exit(1)


def _json_default(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def emit(columns: list[str], rows: list[tuple], fmt: str) -> None:
    """Print rows as an aligned table, CSV, or a JSON array of objects."""
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif fmt == "json":
        records = [dict(zip(columns, row)) for row in rows]
        click.echo(json.dumps(records, ensure_ascii=False, default=_json_default, indent=1))
    else:
        click.echo(render_table(columns, rows))


def render_table(columns: list[str], rows: list[tuple], max_cell: int = 60) -> str:
    def cell(value) -> str:
        text = "NULL" if value is None else str(value)
        text = text.replace("\n", " ")
        return text if len(text) <= max_cell else text[: max_cell - 1] + "…"

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    footer = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
    return "\n".join([line.rstrip(), rule, *body, footer])
