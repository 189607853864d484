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


def _connect(path: Path | str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=read_only,
                         config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    load_extensions(con, "fts")
    return con


def _fill_index(con: duckdb.DuckDBPyConnection, wh: Warehouse, snapshot: int) -> None:
    lake = wh.connect(read_only=True, snapshot=snapshot)
    try:
        reader = lake.execute("SELECT sentence_id, text FROM sentences").to_arrow_reader(65_536)
        con.execute("CREATE TABLE sentences (sentence_id VARCHAR PRIMARY KEY, text VARCHAR)")
        for batch in reader:
            con.execute("INSERT INTO sentences SELECT * FROM batch")
    finally:
        lake.close()
    con.execute(f"PRAGMA create_fts_index('sentences', 'sentence_id', 'text', {INDEX_OPTIONS})")


def build_index(wh: Warehouse, snapshot: int) -> Path:
    """Write the index of `snapshot` (under a temporary name, then renamed: readers never see a
    half-built one) and delete the indexes of older snapshots."""
    target = index_path(wh, snapshot)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    con = _connect(partial)
    try:
        _fill_index(con, wh, snapshot)
    finally:
        con.close()
    partial.replace(target)
    for old in index_folder(wh).glob("sentences-*.duckdb"):
        number = old.stem.removeprefix("sentences-")
        if number.isdigit() and int(number) < snapshot:
            old.unlink(missing_ok=True)
    return target


def _resolve(wh: Warehouse, at: int | None) -> int:
    with wh.connect(read_only=True) as con:
        if at is None:
            return current_snapshot(con)
        check_snapshot(con, at)
        return at


def _index_connection(wh: Warehouse, snapshot: int) -> duckdb.DuckDBPyConnection:
    """The index of `snapshot` with the lake attached at that snapshot: the stored index, else
    (an older snapshot, or an index not built yet) the current one is built and kept, an older
    one is built in memory for this search only."""
    path = index_path(wh, snapshot)
    with wh.connect(read_only=True) as lake:
        latest = current_snapshot(lake)
    if not path.exists() and snapshot == latest:
        build_index(wh, snapshot)
    if path.exists():
        con = _connect(path, read_only=True)
    else:
        con = _connect()
        _fill_index(con, wh, snapshot)
    options = ["READ_ONLY", f"SNAPSHOT_VERSION {int(snapshot)}"]
    load_extensions(con, "ducklake", "postgres_scanner" if wh.postgres_url() else "sqlite_scanner")
    con.execute(f"ATTACH {quote(wh.catalog_uri())} AS {LAKE} ({', '.join(options)})")
    return con


SEARCH_COLUMNS = ["score", "text", "title", "source_id", "published", "lang", "sentence_id"]


def search(wh: Warehouse, query: str, limit: int = 10, source: str | None = None, lang: str | None = None,
           at: int | None = None) -> tuple[list[str], list[tuple]]:
    """Sentences ranked by BM25 for `query` (best first; ties by sentence id), with their
    document's title, source and publication date."""
    snapshot = _resolve(wh, at)
    con = _index_connection(wh, snapshot)
    try:
        rows = con.execute(
            f"""
            WITH hits AS (
                SELECT sentence_id, fts_main_sentences.match_bm25(sentence_id, ?) AS score
                FROM sentences
            )
            SELECT round(h.score, 3), s.text, d.title, s.source_id, d.published, s.lang, s.sentence_id
            FROM hits h
            JOIN {LAKE}.sentences s USING (sentence_id)
            JOIN {LAKE}.documents d USING (version_id)
            WHERE h.score IS NOT NULL AND (? IS NULL OR s.source_id = ?) AND (? IS NULL OR s.lang = ?)
            ORDER BY h.score DESC, s.sentence_id
            LIMIT ?
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
