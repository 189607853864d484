"""The researcher's desk, as `corpus` commands: shell, search, kwic and report.

Thin: each command parses its options and calls `shell`, `search` or `charts`; errors a user can
act on are one line on stderr, as everywhere in the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flows import warehouse
from flows.interface.common import emit, fail, format_option, warehouse_options


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]})
@warehouse_options
@click.option("--at", "at", type=int, default=None, help="Open snapshot N instead of the latest.")
@click.option("--print-init", is_flag=True, help="Print the init script (for `duckdb -init FILE`) and exit.")
@click.argument("duckdb_args", nargs=-1, type=click.UNPROCESSED)
def shell(wh: warehouse.Warehouse, at: int | None, print_init: bool, duckdb_args: tuple[str, ...]) -> None:
    """Open the DuckDB command line on the warehouse: read-only, every table a view of its name.

    Pipe SQL in (echo "FROM documents LIMIT 3;" | corpus shell) or type it. Arguments after
    the options go to duckdb (e.g. -csv). Safe while a run is writing.
    """
    from flows.interface.shell import init_script, run_shell

    try:
        if print_init:
            click.echo(init_script(wh, at), nl=False)
            return
        sys.exit(run_shell(wh, at, list(duckdb_args)))
    except warehouse.WarehouseError as exc:
        fail(str(exc))


@click.command("search")
@click.argument("query")
@warehouse_options
@format_option
@click.option("--limit", default=10, show_default=True, help="Sentences to show.")
@click.option("--source", default=None, help="Only sentences of this source_id.")
@click.option("--lang", default=None, help="Only sentences in this language (e.g. en).")
@click.option("--at", "at", type=int, default=None, help="Search snapshot N instead of the latest.")
def search_command(query: str, wh: warehouse.Warehouse, fmt: str, limit: int, source: str | None,
                   lang: str | None, at: int | None) -> None:
    """Sentences ranked by relevance to QUERY (BM25; words stemmed, stop words ignored), with
    their document's title, source and date."""
    from flows.warehouse.search import search

    try:
        columns, rows = search(wh, query, limit, source, lang, at)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    emit(columns, rows, fmt)


@click.command("kwic")
@click.argument("phrase")
@warehouse_options
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text", show_default=True,
              help="text: aligned lines; csv/json: one record per occurrence.")
@click.option("--width", default=60, show_default=True, help="Characters of context either side.")
@click.option("--limit", type=int, default=None, help="At most this many lines.")
@click.option("--at", "at", type=int, default=None, help="Read snapshot N instead of the latest.")
def kwic_command(phrase: str, wh: warehouse.Warehouse, fmt: str, width: int, limit: int | None, at: int | None) -> None:
    """Keyword in context: every occurrence of PHRASE as whole words (case-insensitive) with
    the clean text around it, the matches aligned in one column."""
    from dataclasses import asdict

    from flows.warehouse.search import kwic, kwic_lines

    try:
        found = kwic(wh, phrase, width, limit, at)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    if fmt == "text":
        for line in kwic_lines(found, width):
            click.echo(line)
        return
    columns = ["left", "match", "right", "doc_id", "char_start", "title", "source_id"]
    emit(columns, [tuple(asdict(c)[k] for k in columns) for c in found], fmt)


@click.command("report")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@warehouse_options
@click.option("--at", "at", type=int, default=None, help="Chart snapshot N instead of the latest.")
def report_command(out: Path, wh: warehouse.Warehouse, at: int | None) -> None:
    """Write OUT (an HTML page, self-contained) with charts of the dataset: documents and
    sentences per source, sentence lengths, languages, removals per rule, growth."""
    from flows.release.charts import charts, report_html

    try:
        with wh.connect(read_only=True, snapshot=at) as con:
            snapshot = at if at is not None else warehouse.current_snapshot(con)
            headline = [(name, con.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
                        for name in ("documents", "sentences", "removed", "rejects")]
            svgs = charts(con)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    page = report_html("Corpus report", f"Warehouse {wh.root}, snapshot {snapshot}.", headline, svgs)
    out.write_text(page, encoding="utf-8")
    click.echo(f"wrote {out} ({len(svgs)} charts, snapshot {snapshot})")
