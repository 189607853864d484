"""Search: a BM25 full-text index of the sentences, ranked search, and keyword in context.

Takes a warehouse (and a snapshot); gives ranked sentences with their document's title, source
and date, and concordance lines (left context | match | right context) cut from the stored
clean text by offsets. The index is DuckDB's full-text search extension over one snapshot's
sentences, kept in <warehouse>/search/sentences-<snapshot>.duckdb: built after each publish,
and by a search that finds none for the snapshot it reads, so an index never answers for
another snapshot than the one it was built from.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .warehouse import LAKE, Warehouse, quote, check_snapshot, current_snapshot, load_extensions

# Words are stemmed (Porter) and lower-cased, accents stripped, English stop words ignored:
# "countries" finds "country", "the" finds nothing by itself.
INDEX_OPTIONS = "stemmer = 'porter', stopwords = 'english', lower = 1, strip_accents = 1"


def index_folder(wh: Warehouse) -> Path:
    return wh.root / "search"


def index_path(wh: Warehouse, snapshot: int) -> Path:
    return index_folder(wh) / f"sentences-{int(snapshot)}.duckdb"


def _attach_index(con: duckdb.DuckDBPyConnection, index: Path | str, read_only: bool) -> None:
    """Attach an index database (a file, or ':memory:') to a lake connection as the default
    database: the full-text macros find their tables by unqualified names."""
    load_extensions(con, "fts")
    con.execute(f"ATTACH {quote(str(index))} AS search_index{' (READ_ONLY)' if read_only else ''}")
    con.execute("USE search_index")


def _fill_index(con: duckdb.DuckDBPyConnection, snapshot: int) -> None:
    # Beside the text, what a search filters and shows: the top hits need no scan of the lake.
    con.execute("CREATE TABLE sentences AS SELECT sentence_id, version_id, source_id, lang, text "
                f"FROM {LAKE}.sentences AT (VERSION => {int(snapshot)}) ORDER BY sentence_id")
    con.execute(f"PRAGMA create_fts_index('sentences', 'sentence_id', 'text', {INDEX_OPTIONS})")


def build_index(wh: Warehouse, snapshot: int) -> Path:
    """Write the index of `snapshot` (under a temporary name, then renamed: readers never see a
    half-built one) and delete the indexes of older snapshots."""
    target = index_path(wh, snapshot)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    con = wh.connect(read_only=True)
    try:
        _attach_index(con, partial, read_only=False)
        _fill_index(con, snapshot)
    finally:
        con.close()
    partial.replace(target)
    for old in index_folder(wh).glob("sentences-*.duckdb"):
        number = old.stem.removeprefix("sentences-")
        if number.isdigit() and int(number) < snapshot:
            old.unlink(missing_ok=True)
    return target


def _index_connection(wh: Warehouse, at: int | None) -> tuple[duckdb.DuckDBPyConnection, int]:
    """A lake connection with the index of snapshot `at` (default: the latest), and that
    snapshot's id: the stored index, else the latest snapshot's is built and kept, an older
    one's built in memory for this search only."""
    con = wh.connect(read_only=True)
    try:
        latest = current_snapshot(con)
        if at is not None:
            check_snapshot(con, at)
        snapshot = latest if at is None else at
        path = index_path(wh, snapshot)
        if not path.exists() and snapshot == latest:
            build_index(wh, snapshot)
        if path.exists():
            _attach_index(con, path, read_only=True)
        else:
            _attach_index(con, ":memory:", read_only=False)
            _fill_index(con, snapshot)
    except BaseException:
        con.close()
        raise
    return con, snapshot


SEARCH_COLUMNS = ["score", "text", "title", "source_id", "published", "lang", "sentence_id"]


def search(wh: Warehouse, query: str, limit: int = 10, source: str | None = None, lang: str | None = None,
           at: int | None = None) -> tuple[list[str], list[tuple]]:
    """Sentences ranked by BM25 for `query` (best first; ties by sentence id), with their
    document's title, source and publication date."""
    con, snapshot = _index_connection(wh, at)
    try:
        rows = con.execute(
            f"""
            WITH top AS (
                SELECT * FROM (
                    SELECT *, fts_main_sentences.match_bm25(sentence_id, ?) AS score FROM sentences
                    WHERE (? IS NULL OR source_id = ?) AND (? IS NULL OR lang = ?)
                ) WHERE score IS NOT NULL ORDER BY score DESC, sentence_id LIMIT ?
            )
            SELECT round(t.score, 3), t.text, d.title, t.source_id, d.published, t.lang, t.sentence_id
            FROM top t JOIN (SELECT version_id, title, published FROM {LAKE}.documents AT (VERSION => {int(snapshot)})) d
                USING (version_id)
            ORDER BY t.score DESC, t.sentence_id
            """,
            [query, source, source, lang, lang, int(limit)],
        ).fetchall()
    finally:
        con.close()
    return SEARCH_COLUMNS, rows


@dataclass(frozen=True)
class Concordance:
    left: str
    match: str
    right: str
    version_id: str
    char_start: int  # of the match, in the document's clean text
    title: str | None
    source_id: str


def _one_line(text: str) -> str:
    return re.sub(r"\s", " ", text)


def kwic(wh: Warehouse, phrase: str, width: int = 60, limit: int | None = None,
         at: int | None = None) -> list[Concordance]:
    """Every occurrence of `phrase` within a sentence (case-insensitive, a space matching any run
    of white space), with `width` characters of clean text either side, in document order."""
    words = phrase.split()
    if not words:
        return []
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
    with wh.connect(read_only=True, snapshot=at) as con:
        candidates = con.execute(
            "SELECT version_id, char_start, text FROM sentences WHERE regexp_matches(text, ?, 'i') "
            "ORDER BY version_id, char_start",
            [pattern.pattern],
        ).fetchall()
        matches = [(version_id, start + m.start(), start + m.end())
                   for version_id, start, text in candidates for m in pattern.finditer(text)]
        if limit is not None:
            matches = matches[:limit]
        if not matches:
            return []
        con.execute("CREATE TEMP TABLE kwic_matches (n INTEGER, version_id VARCHAR, s BIGINT, e BIGINT)")
        con.executemany("INSERT INTO kwic_matches VALUES (?, ?, ?, ?)",
                        [[n, v, s, e] for n, (v, s, e) in enumerate(matches)])
        # DuckDB's substr counts from 1, our offsets from 0: the windows are cut in the database,
        # so only 2 x width characters of each document travel.
        rows = con.execute(
            f"""
            SELECT substr(d.clean_text, greatest(m.s - {int(width)}, 0) + 1, m.s - greatest(m.s - {int(width)}, 0)),
                   substr(d.clean_text, m.s + 1, m.e - m.s),
                   substr(d.clean_text, m.e + 1, {int(width)}),
                   m.version_id, m.s, d.title, d.source_id
            FROM kwic_matches m JOIN documents d USING (version_id) ORDER BY m.n
            """
        ).fetchall()
    return [Concordance(_one_line(left), _one_line(match), _one_line(right), version_id, start, title, source)
            for left, match, right, version_id, start, title, source in rows]


def kwic_lines(found: list[Concordance], width: int) -> list[str]:
    """Terminal lines: the left context right-aligned to `width`, so every match starts in the
    same column."""
    return [f"{c.left.rjust(width)} | {c.match} | {c.right}" for c in found]
