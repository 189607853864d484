"""Search: a BM25 full-text index of the sentences, ranked search, and keyword in context.

Takes a warehouse (and a snapshot); gives ranked sentences with their document's title, source
and date, and concordance lines (left context | match | right context) cut from the stored
clean text by offsets. The index is DuckDB's full-text search extension over one snapshot's
sentences, kept in <warehouse>/search/sentences-<snapshot>.duckdb: brought up to date after
each publish (from the previous snapshot's index when there is one), and by a search that
finds none for the snapshot it reads, so an index never answers for another snapshot than the
one it was built from.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from .warehouse import LAKE, Warehouse, quote, check_snapshot, current_snapshot

# Words are runs of letters and digits in any script (DuckDB's default tokenizer keeps curly
# quotes and dashes on words, so '“Interest' would not be found as 'interest'), stemmed
# (Porter), lower-cased, accents stripped, English stop words ignored: "countries" finds
# "country", "the" finds nothing by itself.
INDEX_OPTIONS = ("stemmer = 'porter', stopwords = 'english', ignore = '[^\\pL\\pN]+', "
                 "lower = 1, strip_accents = 1")
# Bumped when the index's tables or options change: an older index is rebuilt, never read.
INDEX_FORMAT = 2


def index_folder(wh: Warehouse) -> Path:
    return wh.root / "search"


def index_path(wh: Warehouse, snapshot: int) -> Path:
    return index_folder(wh) / f"sentences-{int(snapshot)}.duckdb"


def _attach_index(con: duckdb.DuckDBPyConnection, index: Path | str, read_only: bool) -> None:
    """Attach an index database (a file, or ':memory:') to a lake connection as the default
    database: the full-text macros find their tables by unqualified names. (The connection's
    `Warehouse.connect` loaded the fts extension.)"""
    con.execute(f"ATTACH {quote(str(index))} AS search_index{' (READ_ONLY)' if read_only else ''}")
    con.execute("USE search_index")


_FTS = "fts_main_sentences"


def _fill_index(con: duckdb.DuckDBPyConnection, snapshot: int) -> None:
    # Beside the text, what a search filters and shows: the top hits need no scan of the lake.
    con.execute("CREATE TABLE sentences AS SELECT sentence_id, version_id, char_start, source_id, lang, text "
                f"FROM {LAKE}.sentences AT (VERSION => {int(snapshot)}) ORDER BY sentence_id")
    con.execute(f"PRAGMA create_fts_index('sentences', 'sentence_id', 'text', {INDEX_OPTIONS})")
    # Postings in term order: a lookup reads the few row groups holding its terms (zone maps)
    # instead of all postings. At 1 GB: 10.6 s more to build; finding the sentences holding
    # two common words, 0.25 s -> 0.02 s. Postings an update adds go at the end, unordered.
    _rewrite_postings(con, "ORDER BY termid, docid")
    con.execute(f"CREATE TABLE index_format AS SELECT {INDEX_FORMAT} AS format")


def _rewrite_postings(con: duckdb.DuckDBPyConnection, clause: str) -> None:
    """Replace the postings table by `SELECT * FROM terms <clause>`, written anew (streamed
    under the memory cap; the full-text macros find the table by name)."""
    con.execute(f"CREATE TABLE {_FTS}.terms_rewritten AS SELECT * FROM {_FTS}.terms {clause}")
    con.execute(f"DROP TABLE {_FTS}.terms")
    con.execute(f"ALTER TABLE {_FTS}.terms_rewritten RENAME TO terms")


def _update_index(con: duckdb.DuckDBPyConnection, since: int, snapshot: int) -> None:
    """Bring a copy of the index of snapshot `since` to `snapshot`, reading only what changed in
    between (DuckLake's change feed): sentences deleted leave, sentences inserted (and still
    there at `snapshot`) come in with their words (tokenized, stop words dropped and stemmed as
    create_fts_index does), and document frequencies move by the documents that left and came.
    A sentence deleted and inserted again unchanged (a reprocessed document) stays as it is.
    Scores equal a fresh build's; only the internal ids differ. Costs what changed, not the
    corpus: at 1 GB, scanning the lake to find the changes took 9 of 13 s."""
    removal, addition = "('delete', 'update_preimage')", "('insert', 'update_postimage')"
    con.execute("CREATE TEMP TABLE changes AS SELECT snapshot_id, rowid, change_type, sentence_id, version_id, "
                f"char_start, source_id, lang, text FROM {LAKE}.table_changes('sentences', {int(since) + 1}, {int(snapshot)})")
    # A row inserted and deleted again between the two snapshots is not there at `snapshot`.
    con.execute(f"""
        CREATE TEMP TABLE arrived AS
        SELECT sentence_id, version_id, char_start, source_id, lang, text FROM changes i
        WHERE change_type IN {addition} AND NOT EXISTS (
            SELECT 1 FROM changes d WHERE d.change_type IN {removal} AND d.rowid = i.rowid AND d.snapshot_id > i.snapshot_id)
    """)
    con.execute(f"""
        CREATE TEMP TABLE gone AS
        SELECT sentence_id FROM sentences s
        WHERE sentence_id IN (SELECT sentence_id FROM changes WHERE change_type IN {removal}) AND NOT EXISTS (
            SELECT 1 FROM arrived a WHERE a.sentence_id = s.sentence_id AND a.version_id = s.version_id
            AND a.char_start = s.char_start AND a.text = s.text
            AND a.source_id IS NOT DISTINCT FROM s.source_id AND a.lang IS NOT DISTINCT FROM s.lang)
    """)
    con.execute(f"CREATE TEMP TABLE gone_docs AS SELECT docid FROM {_FTS}.docs WHERE name IN (SELECT sentence_id FROM gone)")
    con.execute(f"CREATE TEMP TABLE df_change AS SELECT termid, -count(DISTINCT docid) AS change FROM {_FTS}.terms "
                "WHERE docid IN (SELECT docid FROM gone_docs) GROUP BY termid")
    if con.execute("SELECT count(*) FROM gone_docs").fetchone()[0]:
        # Rewritten rather than DELETEd: at 1 GB, deleting the postings of 78k sentences (of 78 M)
        # ran out of memory under the 500MB cap (it passed at 700MB); the rewrite took 3 s at 656 MB RSS.
        _rewrite_postings(con, "WHERE docid NOT IN (SELECT docid FROM gone_docs)")
    con.execute(f"DELETE FROM {_FTS}.docs WHERE docid IN (SELECT docid FROM gone_docs)")
    con.execute("DELETE FROM sentences WHERE sentence_id IN (SELECT sentence_id FROM gone)")
    con.execute("CREATE TEMP TABLE added AS SELECT * FROM arrived "
                "WHERE sentence_id NOT IN (SELECT sentence_id FROM sentences) ORDER BY sentence_id")
    con.execute("INSERT INTO sentences SELECT * FROM added")
    con.execute(f"CREATE TEMP TABLE added_docs AS SELECT (SELECT coalesce(max(docid) + 1, 0) FROM {_FTS}.docs) "
                "+ row_number() OVER (ORDER BY sentence_id) - 1 AS docid, sentence_id AS name, text FROM added")
    con.execute(f"""
        CREATE TEMP TABLE added_words AS
        SELECT stem(w, 'porter') AS term, docid
        FROM (SELECT unnest({_FTS}.tokenize(text)) AS w, docid FROM added_docs)
        WHERE w NOT NULL AND w <> '' AND w NOT IN (SELECT sw FROM {_FTS}.stopwords)
    """)
    con.execute(f"""
        INSERT INTO {_FTS}.docs (docid, name, len)
        SELECT a.docid, a.name, coalesce(n.len, 0)
        FROM added_docs a LEFT JOIN (SELECT docid, count(*) AS len FROM added_words GROUP BY docid) n USING (docid)
    """)
    con.execute(f"""
        INSERT INTO {_FTS}.dict (termid, term, df)
        SELECT (SELECT coalesce(max(termid) + 1, 0) FROM {_FTS}.dict) + row_number() OVER (ORDER BY term) - 1, term, 0
        FROM (SELECT DISTINCT term FROM added_words WHERE term NOT IN (SELECT term FROM {_FTS}.dict))
    """)
    con.execute(f"INSERT INTO {_FTS}.terms (docid, fieldid, termid) "
                f"SELECT a.docid, 0, d.termid FROM added_words a JOIN {_FTS}.dict d USING (term)")
    con.execute(f"INSERT INTO df_change SELECT d.termid, count(DISTINCT a.docid) FROM added_words a "
                f"JOIN {_FTS}.dict d USING (term) GROUP BY d.termid")
    con.execute("CREATE TEMP TABLE df_moved AS SELECT termid, sum(change) AS change FROM df_change GROUP BY termid")
    con.execute(f"UPDATE {_FTS}.dict SET df = df + m.change FROM df_moved m WHERE dict.termid = m.termid")
    con.execute(f"DELETE FROM {_FTS}.dict WHERE df = 0 AND termid IN (SELECT termid FROM df_moved)")
    con.execute(f"UPDATE {_FTS}.stats SET num_docs = (SELECT count(docid) FROM {_FTS}.docs), "
                f"avgdl = (SELECT sum(len) / count(len) FROM {_FTS}.docs)")


def _indexes_before(wh: Warehouse, snapshot: int) -> list[tuple[int, Path]]:
    """(snapshot, index file) of snapshots before `snapshot`, newest first."""
    earlier = []
    for path in index_folder(wh).glob("sentences-*.duckdb"):
        number = path.stem.removeprefix("sentences-")
        if number.isdigit() and int(number) < snapshot:
            earlier.append((int(number), path))
    return sorted(earlier, reverse=True)


def _previous_index(wh: Warehouse, snapshot: int) -> tuple[int, Path] | None:
    """The newest index of an earlier snapshot in this code's format, if any."""
    for since, path in _indexes_before(wh, snapshot):
        if _is_current(path):
            return since, path
    return None


def _has_current_format(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the index that is `con`'s default database was built by this code's INDEX_FORMAT."""
    try:
        return con.execute("SELECT max(format) FROM index_format").fetchone()[0] == INDEX_FORMAT
    except duckdb.Error:  # no index_format table: built before formats were recorded
        return False


def _is_current(path: Path) -> bool:
    """Whether the index file at `path` was built by this code's INDEX_FORMAT."""
    with duckdb.connect(str(path), read_only=True) as con:
        return _has_current_format(con)


def build_index(wh: Warehouse, snapshot: int, incremental: bool = True) -> Path:
    """Write the index of `snapshot` (under a temporary name, then renamed: readers never see a
    half-built one) and delete the indexes of older snapshots. With an index of an earlier
    snapshot at hand, a copy of it is updated; otherwise (or with incremental=False, or when
    the update fails) the index is built from scratch."""
    target = index_path(wh, snapshot)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    previous = _previous_index(wh, snapshot) if incremental else None
    try:
        _write_index(wh, partial, snapshot, previous)
    except duckdb.Error:
        if previous is None:
            raise
        # The change feed since the older index may be gone (its snapshots expired by
        # maintenance, say): a fresh build needs only the current snapshot.
        _write_index(wh, partial, snapshot, None)
    partial.replace(target)
    for _, old in _indexes_before(wh, snapshot):
        old.unlink(missing_ok=True)
    return target


def _write_index(wh: Warehouse, partial: Path, snapshot: int, previous: tuple[int, Path] | None) -> None:
    partial.unlink(missing_ok=True)
    if previous:
        shutil.copyfile(previous[1], partial)
    con = wh.connect(read_only=True)
    try:
        # Unbounded, DuckDB took 6.3 GB to index 7.8 M sentences (1 GB corpus).
        wh.bound_memory(con, spill_in=partial.parent)
        _attach_index(con, partial, read_only=False)
        if previous:
            _update_index(con, previous[0], snapshot)
        else:
            _fill_index(con, snapshot)
    finally:
        con.close()


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
        if path.exists():
            _attach_index(con, path, read_only=True)
            if _has_current_format(con):
                return con, snapshot
            con.execute(f"USE {LAKE}")
            con.execute("DETACH search_index")
        if snapshot == latest:
            build_index(wh, snapshot)
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


def phrase_pattern(phrase: str) -> re.Pattern | None:
    """The phrase as whole words, case-insensitive, a space matching any run of white space;
    None for a phrase of only white space."""
    words = phrase.split()
    if not words:
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    start = r"\b" if re.match(r"\w", words[0]) else ""
    end = r"\b" if re.search(r"\w$", words[-1]) else ""
    return re.compile(start + body + end, re.IGNORECASE)


def _phrase_terms(con: duckdb.DuckDBPyConnection, phrase: str) -> list[str]:
    """The index terms of the phrase's words, by the index's own tokenizer, stop words and
    stemmer."""
    return [row[0] for row in con.execute(
        "SELECT DISTINCT stem(word, 'porter') FROM (SELECT unnest(fts_main_sentences.tokenize(?)) AS word) "
        "WHERE word <> '' AND word NOT IN (SELECT sw FROM fts_main_sentences.stopwords) ORDER BY 1",
        [phrase]).fetchall()]


def _candidates(con: duckdb.DuckDBPyConnection, phrase: str, pattern: re.Pattern) -> list[tuple]:
    """(version_id, char_start, text) of the sentences that may hold the phrase, in document
    order: those whose index terms include every term of the phrase (a sentence holding the
    phrase as whole words has its words as tokens), or a scan when no word is indexed."""
    terms = _phrase_terms(con, phrase)
    if not terms:  # only stop words, or no letters or digits: nothing to look up
        return con.execute("SELECT version_id, char_start, text FROM sentences WHERE regexp_matches(text, ?, 'i') "
                           "ORDER BY version_id, char_start", [pattern.pattern.replace(r"\b", "")]).fetchall()
    term_ids = [row[0] for row in con.execute(
        f"SELECT termid FROM {_FTS}.dict WHERE term IN ({', '.join('?' * len(terms))})", terms).fetchall()]
    if len(term_ids) < len(terms):  # a word no sentence has
        return []
    return con.execute(
        f"""
        WITH hits AS (
            SELECT docid FROM {_FTS}.terms WHERE termid IN ({', '.join('?' * len(term_ids))})
            GROUP BY docid HAVING count(DISTINCT termid) = {len(term_ids)}
        )
        SELECT s.version_id, s.char_start, s.text
        FROM hits JOIN {_FTS}.docs d USING (docid) JOIN sentences s ON s.sentence_id = d.name
        ORDER BY s.version_id, s.char_start
        """, term_ids).fetchall()


@dataclass(frozen=True)
class PhraseMatch:
    version_id: str
    sentence_start: int  # of the sentence, in the document's clean text
    sentence: str
    start: int  # of the match, in the document's clean text
    end: int


def _phrase_matches(con: duckdb.DuckDBPyConnection, phrase: str) -> list[PhraseMatch]:
    pattern = phrase_pattern(phrase)
    if pattern is None:
        return []
    return [PhraseMatch(version_id, start, text, start + m.start(), start + m.end())
            for version_id, start, text in _candidates(con, phrase, pattern) for m in pattern.finditer(text)]


def phrase_sentences(wh: Warehouse, phrase: str, at: int | None = None) -> list[PhraseMatch]:
    """Every occurrence of `phrase` as whole words within a sentence (case-insensitive, a space
    matching any run of white space), with its sentence, in document order. Sentences are
    looked up in the search index, not scanned."""
    con, _ = _index_connection(wh, at)
    try:
        return _phrase_matches(con, phrase)
    finally:
        con.close()


def kwic(wh: Warehouse, phrase: str, width: int = 60, limit: int | None = None,
         at: int | None = None) -> list[Concordance]:
    """Every occurrence of `phrase` as whole words within a sentence (case-insensitive, a space
    matching any run of white space), with `width` characters of clean text either side, in
    document order. Sentences are looked up in the search index, not scanned."""
    if phrase_pattern(phrase) is None:
        return []
    con, snapshot = _index_connection(wh, at)
    try:
        matches = _phrase_matches(con, phrase)[:limit]
        if not matches:
            return []
        # Handed over as one Arrow table: inserting 15,000 matches row by row took 5 s.
        con.register("kwic_matches", pa.table({
            "n": list(range(len(matches))), "version_id": [m.version_id for m in matches],
            "s": [m.start for m in matches], "e": [m.end for m in matches],
        }))
        # DuckDB's substr counts from 1, our offsets from 0: the windows are cut in the database,
        # so only 2 x width characters of each document travel.
        rows = con.execute(
            f"""
            SELECT substr(d.clean_text, greatest(m.s - {int(width)}, 0) + 1, m.s - greatest(m.s - {int(width)}, 0)),
                   substr(d.clean_text, m.s + 1, m.e - m.s),
                   substr(d.clean_text, m.e + 1, {int(width)}),
                   m.version_id, m.s, d.title, d.source_id
            FROM kwic_matches m
            JOIN (SELECT version_id, clean_text, title, source_id FROM {LAKE}.documents AT (VERSION => {int(snapshot)})) d
                USING (version_id)
            ORDER BY m.n
            """
        ).fetchall()
    finally:
        con.close()
    return [Concordance(_one_line(left), _one_line(match), _one_line(right), version_id, start, title, source)
            for left, match, right, version_id, start, title, source in rows]


def kwic_lines(found: list[Concordance], width: int) -> list[str]:
    """Terminal lines: the left context right-aligned to `width`, so every match starts in the
    same column."""
    return [f"{c.left.rjust(width)} | {c.match} | {c.right}" for c in found]
