"""Charts of a dataset: SVG figures (matplotlib) and a self-contained HTML report.

Takes a DuckDB connection where documents, sentences, removed and runs are visible by name
(a warehouse snapshot, or a release's Parquet files); gives SVG texts, byte-identical for the
same data (fixed ids, no dates), and an HTML page that embeds them (nothing to fetch to view it).
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("svg")  # no display, no GUI toolkit: figures are only ever written as SVG

from matplotlib.figure import Figure  # noqa: E402  (after choosing the backend)

if TYPE_CHECKING:  # connections come from flows.warehouse
    import duckdb

SVG_STYLE = {"svg.hashsalt": "corpus-pipeline", "svg.fonttype": "none", "font.size": 9,
             "text.parse_math": False,  # labels are data: a source named $...$ is text, not TeX
             "axes.spines.top": False, "axes.spines.right": False}
BAR_COLOUR, SECOND_COLOUR = "#3b6ea5", "#e0a030"
TOP = 15  # categories shown before the rest are summed as "other"


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def _top(rows: list[tuple], top: int = TOP) -> list[tuple]:
    if len(rows) <= top:
        return rows
    return rows[:top - 1] + [("other", sum(n for _, n in rows[top - 1:]))]


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_STYLE):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None}, bbox_inches="tight")
    return buffer.getvalue()


def _figure(height: float = 3.2) -> tuple[Figure, object]:
    with matplotlib.rc_context(SVG_STYLE):
        figure = Figure(figsize=(6.4, height))
        return figure, figure.add_subplot()


def _barh(rows: list[tuple], title: str, xlabel: str) -> str:
    rows = _top(rows)
    figure, axes = _figure(max(2.0, 0.28 * len(rows) + 1.0))
    with matplotlib.rc_context(SVG_STYLE):
        labels = [str(label) for label, _ in rows][::-1]
        axes.barh(labels, [n for _, n in rows][::-1], color=BAR_COLOUR)
        axes.set_title(title, loc="left")
        axes.set_xlabel(xlabel)
    return _svg(figure)


def per_source(con) -> str:
    rows = _rows(con, "SELECT source_id, count(DISTINCT doc_id), count(*) FROM sentences "
                      "GROUP BY 1 ORDER BY 3 DESC, 1")[:TOP]
    with matplotlib.rc_context(SVG_STYLE):
        figure = Figure(figsize=(6.4, max(2.0, 0.3 * len(rows) + 1.0)))
        documents, sentences = figure.subplots(1, 2, sharey=True)
        labels = [r[0] for r in rows][::-1]
        documents.barh(labels, [r[1] for r in rows][::-1], color=SECOND_COLOUR)
        documents.set_title("Document versions per source", loc="left")
        sentences.barh(labels, [r[2] for r in rows][::-1], color=BAR_COLOUR)
        sentences.set_title("Sentences", loc="left")
        for axes in (documents, sentences):
            axes.xaxis.get_major_locator().set_params(integer=True)
    return _svg(figure)


def sentence_lengths(con) -> str:
    rows = _rows(con, "SELECT least(n_words, 80) AS words, count(*) FROM sentences GROUP BY 1 ORDER BY 1")
    figure, axes = _figure()
    with matplotlib.rc_context(SVG_STYLE):
        axes.bar([w for w, _ in rows], [n for _, n in rows], width=1.0, color=BAR_COLOUR)
        axes.set_title("Sentence length (80 = 80 words or more)", loc="left")
        axes.set_xlabel("words")
        axes.set_ylabel("sentences")
    return _svg(figure)


def languages(con) -> str:
    rows = _rows(con, "SELECT coalesce(lang, 'unknown'), count(*) FROM sentences GROUP BY 1 ORDER BY 2 DESC, 1")
    return _barh(rows, "Sentences per language", "sentences")


def removals(con) -> str:
    rows = _rows(con, "SELECT rule, count(*) FROM removed GROUP BY 1 ORDER BY 2 DESC, 1")
    return _barh(rows or [("(none)", 0)], "Lines removed, by rule", "lines")


def growth(con) -> str:
    """Sentences after each snapshot: a run's sentences written minus deleted, accumulated."""
    rows = _rows(con, "SELECT snapshot_id, sum(n_sentences - n_sentences_deleted) OVER (ORDER BY snapshot_id) "
                      "FROM runs ORDER BY snapshot_id")
    figure, axes = _figure(2.6)
    with matplotlib.rc_context(SVG_STYLE):
        snapshots = [s for s, _ in rows]
        axes.plot(snapshots, [n for _, n in rows], marker="o", color=BAR_COLOUR)
        axes.set_title("Sentences after each snapshot", loc="left")
        axes.set_xlabel("snapshot")
        axes.set_ylabel("sentences")
        axes.set_ylim(bottom=0)
        if len(snapshots) <= 20:
            axes.set_xticks(snapshots)
        else:
            axes.xaxis.get_major_locator().set_params(integer=True)
    return _svg(figure)


CHARTS: dict[str, tuple[str, Callable]] = {
    "sources": ("Documents and sentences per source", per_source),
    "sentence-lengths": ("Sentence length", sentence_lengths),
    "languages": ("Languages", languages),
    "removals": ("Removals per rule", removals),
    "growth": ("Growth across snapshots", growth),
}


def charts(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """{chart name: SVG text} for every chart."""
    return {name: draw(con) for name, (_, draw) in CHARTS.items()}


def report_html(title: str, subtitle: str, headline: list[tuple[str, int]], svgs: dict[str, str]) -> str:
    """One HTML page: headline numbers and every chart, inline (no scripts, fonts or links)."""
    numbers = "".join(f"<div class='n'><b>{value:,}</b><span>{html.escape(label)}</span></div>"
                      for label, value in headline)
    sections = "".join(
        f"<section id='{name}'><h2>{html.escape(CHARTS[name][0])}</h2>{_inline(svg)}</section>"
        for name, svg in svgs.items()
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:58rem;margin:2rem auto;padding:0 1rem;color:#222}"
        ".numbers{display:flex;gap:1.5rem;flex-wrap:wrap}.n b{display:block;font-size:1.6rem}"
        ".n span{color:#666}section{margin-top:2rem}section svg{max-width:100%;height:auto}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
        f"<div class='numbers'>{numbers}</div>{sections}</body></html>\n"
    )


def _inline(svg: str) -> str:
    """An SVG file's text as an element of the page (without its XML prologue)."""
    return svg[svg.index("<svg"):]
