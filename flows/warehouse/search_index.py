"""The search index: DuckDB's full-text (BM25) index of one snapshot's sentences.

Takes a warehouse and a snapshot; gives <warehouse>/search/sentences-<snapshot>.duckdb, built
from scratch or brought up to date from an earlier snapshot's index through DuckLake's change
feed, and connections with it attached for `search` to query. Readers never see a half-built
index, and an index never answers for another snapshot than the one it was built from.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import duckdb

from flows.warehouse.catalog import LAKE, Warehouse, WarehouseError, quote, check_snapshot, current_snapshot

# Words are runs of letters and digits in any script (DuckDB's default tokenizer keeps curly
# quotes and dashes on words, so '“Interest' would not be found as 'interest'), stemmed
# (Porter), lower-cased, accents stripped, English stop words ignored: "countries" finds
# "country", "the" finds nothing by itself.
_NOT_WORD = "[^\\pL\\pN]+"
INDEX_OPTIONS = (f"stemmer = 'porter', stopwords = 'english', ignore = '{_NOT_WORD}', "
                 "lower = 1, strip_accents = 1")
# The words of a sentence's `text`, as the index's own tokenizer (create_fts_index's macro
# `tokenize`, which queries use) finds them, less its empty strings: it replaces each run of
# `ignore` by a space and splits at white space; splitting at the runs themselves (they take in
# all white space) gives the same words in one regex pass instead of two.
_WORDS = f"regexp_split_to_array(lower(strip_accents(text)), '{_NOT_WORD}')"
# Bumped when the index's tables or options change: an older index is rebuilt, never read.
INDEX_FORMAT = 6
# An update leaves the postings of the sentences that left in place (`dead_docs` lists their
# documents; every query reaches postings through `docs` or `sentences`, which no longer hold
# them), and rewrites the postings without them once they are this share of all postings:
# rewriting on every update would take most of its time, and DELETE runs out of memory.
DEAD_POSTINGS_SHARE = 0.1
# DuckDB's memory while an index is written, below the run's MEMORY_LIMIT: the build is the
# flow's peak, and DuckDB's RSS exceeds its cap by a share that grows with the index; a lower
# cap costs no time (peak RSS per stage: python benchmarks/bench.py).
INDEX_MEMORY_LIMIT = "200MB"


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


def _detach_index(con: duckdb.DuckDBPyConnection) -> None:
    """Undo `_attach_index`: the lake is the default database again."""
    con.execute(f"USE {LAKE}")
    con.execute("DETACH search_index")


FTS = "fts_main_sentences"
_SENTENCE_COLUMNS = "sentence_id, doc_id, char_start, source_id, lang, text"
# The stored sentences carry their full-text document id: a phrase lookup joins its postings'
# ids to them directly, on integers. Their text is stored uncompressed: the join reads every
# stored text (DuckDB fetches no rows by position), and decompressing FSST there takes longer
# than the extra disk reads cost (the indexed phrase query of python benchmarks/bench.py).
_SENTENCES_TABLE = ("CREATE TABLE sentences (docid BIGINT, sentence_id VARCHAR, doc_id VARCHAR, "
                    "char_start BIGINT, source_id VARCHAR, lang VARCHAR, text VARCHAR USING COMPRESSION uncompressed)")


@contextmanager
def _one_thread(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the statements within on one DuckDB thread (see where it is used for why)."""
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute("RESET threads")


def _fill_index(con: duckdb.DuckDBPyConnection, snapshot: int) -> None:
    """Index snapshot `snapshot`'s sentences from scratch: DuckDB's full-text index (its tables
    and macros) made over the still empty table, then filled as an update from nothing is.
    create_fts_index's own filling runs correlated UPDATEs, most of a build's time."""
    con.execute(_SENTENCES_TABLE)
    con.execute(f"PRAGMA create_fts_index('sentences', 'sentence_id', 'text', {INDEX_OPTIONS})")
    # Beside the text, what a search filters and shows: the top hits need no scan of the lake.
    # Document ids are the lake's row ids (DuckLake's row lineage: unique, kept by compaction,
    # given in insertion order), so an update's arriving sentences bring ids that follow every
    # indexed one; numbering them in id order instead would sort them all.
    # One thread: two threads' copy holds more in memory and is no faster.
    with _one_thread(con):
        con.execute(f"INSERT INTO sentences SELECT rowid, {_SENTENCE_COLUMNS} "
                    f"FROM {LAKE}.sentences AT (VERSION => {int(snapshot)})")
    con.execute("CREATE TEMP TABLE df_change (termid BIGINT, change BIGINT)")
    _add_postings(con, "(SELECT docid, sentence_id AS name, text FROM sentences)")
    _move_document_frequencies(con)
    con.execute("CREATE TABLE dead_docs (docid BIGINT, postings BIGINT)")
    con.execute(f"CREATE TABLE index_format AS SELECT {INDEX_FORMAT} AS format")


def _rewrite_postings(con: duckdb.DuckDBPyConnection, clause: str) -> None:
    """Replace the postings table by `SELECT * FROM terms <clause>`, written anew (streamed
    under the memory cap; the full-text macros find the table by name)."""
    con.execute(f"CREATE TABLE {FTS}.terms_rewritten AS SELECT * FROM {FTS}.terms {clause}")
    con.execute(f"DROP TABLE {FTS}.terms")
    con.execute(f"ALTER TABLE {FTS}.terms_rewritten RENAME TO terms")


def _add_postings(con: duckdb.DuckDBPyConnection, documents: str) -> None:
    """Index the sentences of `documents` (a table or subquery of docid, name, text, whose docids
    follow every indexed one): their words, tokenized, stop words dropped and stemmed as
    create_fts_index does; new terms in the dictionary; postings; lengths; and what their
    document frequencies gain, in df_change."""
    first_docid = con.execute(f"SELECT min(docid) FROM {documents}").fetchone()[0]
    if first_docid is None:
        return
    con.execute(f"""
        CREATE TEMP TABLE added_words AS
        SELECT word, docid FROM (SELECT unnest({_WORDS}) AS word, docid FROM {documents})
        WHERE word NOT NULL AND word <> '' AND word NOT IN (SELECT sw FROM {FTS}.stopwords)
    """)
    # Each distinct word stemmed once, not every occurrence: stemming dominates otherwise.
    con.execute("CREATE TEMP TABLE word_terms AS "
                "SELECT word, stem(word, 'porter') AS term FROM (SELECT DISTINCT word FROM added_words)")
    con.execute(f"""
        INSERT INTO {FTS}.dict (termid, term, df)
        SELECT (SELECT coalesce(max(termid) + 1, 0) FROM {FTS}.dict) + row_number() OVER (ORDER BY term) - 1, term, 0
        FROM (SELECT DISTINCT term FROM word_terms WHERE term NOT IN (SELECT term FROM {FTS}.dict))
    """)
    # Postings in term order: a lookup reads the few row groups holding its terms (zone maps)
    # instead of all postings. An update's postings follow the others, in term order among
    # themselves.
    con.execute(f"INSERT INTO {FTS}.terms (docid, fieldid, termid) SELECT a.docid, 0, d.termid "
                f"FROM added_words a JOIN word_terms USING (word) JOIN {FTS}.dict d USING (term) "
                "ORDER BY d.termid, a.docid")
    con.execute("DROP TABLE added_words")
    con.execute("DROP TABLE word_terms")
    added_postings = f"SELECT docid, termid FROM {FTS}.terms WHERE docid >= {int(first_docid)}"
    # One thread: two threads' join of every sentence with its posting count holds twice the
    # memory (and outgrows the cap) for no gain in time.
    with _one_thread(con):
        con.execute(f"""
            INSERT INTO {FTS}.docs (docid, name, len)
            SELECT a.docid, a.name, coalesce(n.len, 0)
            FROM {documents} a LEFT JOIN (SELECT docid, count(*) AS len FROM ({added_postings}) GROUP BY docid) n
                 USING (docid)
            ORDER BY a.docid
        """)
    # Counted on the integer postings, by one thread: counting distinct documents per word
    # (text) runs out of memory under the cap, and two threads' tables of (term, document)
    # pairs hold far more than one thread's.
    with _one_thread(con):
        con.execute(f"INSERT INTO df_change SELECT termid, count(*) FROM (SELECT termid FROM ({added_postings}) "
                    "GROUP BY termid, docid) GROUP BY termid")


def _move_document_frequencies(con: duckdb.DuckDBPyConnection) -> None:
    """Apply df_change to the dictionary (a term no sentence holds any more leaves it) and
    recount the statistics BM25 reads."""
    con.execute("CREATE TEMP TABLE df_moved AS SELECT termid, sum(change) AS change FROM df_change GROUP BY termid")
    con.execute(f"UPDATE {FTS}.dict SET df = df + m.change FROM df_moved m WHERE dict.termid = m.termid")
    con.execute(f"DELETE FROM {FTS}.dict WHERE df = 0 AND termid IN (SELECT termid FROM df_moved)")
    con.execute(f"UPDATE {FTS}.stats SET num_docs = (SELECT count(docid) FROM {FTS}.docs), "
                f"avgdl = (SELECT sum(len) / count(len) FROM {FTS}.docs)")


def _read_changes(con: duckdb.DuckDBPyConnection, since: int, snapshot: int) -> None:
    """What an update of the index of snapshot `since` (the connection's default database,
    only read) to `snapshot` does, in temporary tables: the sentences that arrive, those that
    leave the index (`gone`, and their postings' documents), what the leaving ones take from
    document frequencies, and which arriving ones it already holds unchanged (`present`)."""
    removal, addition = "('delete', 'update_preimage')", "('insert', 'update_postimage')"
    con.execute(f"CREATE TEMP TABLE changes AS SELECT snapshot_id, rowid, change_type, {_SENTENCE_COLUMNS} "
                f"FROM {LAKE}.table_changes('sentences', {int(since) + 1}, {int(snapshot)})")
    # A row inserted and deleted again between the two snapshots is not there at `snapshot`.
    con.execute(f"""
        CREATE TEMP TABLE arrived AS
        SELECT rowid AS docid, {_SENTENCE_COLUMNS} FROM changes i
        WHERE change_type IN {addition} AND NOT EXISTS (
            SELECT 1 FROM changes d WHERE d.change_type IN {removal} AND d.rowid = i.rowid AND d.snapshot_id > i.snapshot_id)
    """)
    con.execute(f"""
        CREATE TEMP TABLE gone AS
        SELECT sentence_id FROM sentences s
        WHERE sentence_id IN (SELECT sentence_id FROM changes WHERE change_type IN {removal}) AND NOT EXISTS (
            SELECT 1 FROM arrived a WHERE a.sentence_id = s.sentence_id AND a.doc_id = s.doc_id
            AND a.char_start = s.char_start AND a.text = s.text
            AND a.source_id IS NOT DISTINCT FROM s.source_id AND a.lang IS NOT DISTINCT FROM s.lang)
    """)
    con.execute(f"CREATE TEMP TABLE gone_docs AS SELECT docid FROM {FTS}.docs WHERE name IN (SELECT sentence_id FROM gone)")
    con.execute(f"CREATE TEMP TABLE gone_postings AS SELECT termid, docid FROM {FTS}.terms "
                "WHERE docid IN (SELECT docid FROM gone_docs)")
    con.execute("CREATE TEMP TABLE df_change AS SELECT termid, -count(DISTINCT docid) AS change FROM gone_postings "
                "GROUP BY termid")
    # Looked up from the few arriving ids, not the other way round: `NOT IN (all indexed ids)`
    # hashes every indexed id.
    con.execute("CREATE TEMP TABLE present AS SELECT sentence_id FROM sentences "
                "WHERE sentence_id IN (SELECT sentence_id FROM arrived) "
                "AND sentence_id NOT IN (SELECT sentence_id FROM gone)")


def _apply_changes(con: duckdb.DuckDBPyConnection) -> None:
    """Apply `_read_changes`'s tables to the index that is the connection's default database."""
    con.execute("INSERT INTO dead_docs SELECT docid, count(*) FROM gone_postings GROUP BY docid")
    dead, postings = con.execute(f"SELECT (SELECT sum(postings) FROM dead_docs), (SELECT count(*) FROM {FTS}.terms)"
                                 ).fetchone()
    if dead and dead > DEAD_POSTINGS_SHARE * postings:
        # Rewritten rather than DELETEd: DuckDB's DELETE of many postings runs out of memory
        # under the index's cap, where the rewrite streams.
        _rewrite_postings(con, "WHERE docid NOT IN (SELECT docid FROM dead_docs)")
        con.execute("DELETE FROM dead_docs")
    con.execute(f"DELETE FROM {FTS}.docs WHERE docid IN (SELECT docid FROM gone_docs)")
    con.execute("DELETE FROM sentences WHERE sentence_id IN (SELECT sentence_id FROM gone)")
    con.execute("CREATE TEMP TABLE added AS SELECT * FROM arrived "
                "WHERE sentence_id NOT IN (SELECT sentence_id FROM present)")
    # Postings are told apart by their ids following the indexed ones (`_add_postings`); a lake
    # whose row ids did not (rewritten by hand, say) gets a fresh index instead.
    con.execute(f"SELECT error('the arriving sentences'' row ids do not follow the indexed ones') "
                f"WHERE (SELECT min(docid) FROM added) <= (SELECT max(docid) FROM {FTS}.docs)")
    con.execute(f"INSERT INTO sentences SELECT docid, {_SENTENCE_COLUMNS} FROM added ORDER BY docid")
    _add_postings(con, "(SELECT docid, sentence_id AS name, text FROM added)")
    _move_document_frequencies(con)


def _update_index(con: duckdb.DuckDBPyConnection, previous: tuple[int, Path], partial: Path, snapshot: int) -> None:
    """Write to `partial` the index of `snapshot`, from `previous` (an earlier snapshot and its
    index file), reading only what changed in between (DuckLake's change feed): sentences
    deleted leave, sentences inserted (and still there at `snapshot`) come in with their words,
    and document frequencies move by the documents that left and came. A sentence deleted and
    inserted again unchanged (a reprocessed document) stays as it is, under its old id. Scores
    equal a fresh build's; only those sentences' ids differ (a fresh build takes the lake's
    row ids).

    The previous index is copied while the changes are read from the lake and from it, so the
    two overlap. The postings of the sentences that left stay until they are
    DEAD_POSTINGS_SHARE of all (the live contents equal a fresh build's)."""
    since, previous_path = previous
    with ThreadPoolExecutor(max_workers=1) as copier:
        copied = copier.submit(shutil.copyfile, previous_path, partial)
        _attach_index(con, previous_path, read_only=True)
        try:
            _read_changes(con, since, snapshot)
        finally:
            _detach_index(con)
        copied.result()
    _attach_index(con, partial, read_only=False)
    _apply_changes(con)


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
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            return _has_current_format(con)
    except duckdb.Error:  # damaged: as good as none
        return False


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
        try:
            _write_index(wh, partial, snapshot, previous)
        except duckdb.Error:
            if previous is None:
                raise
            # The change feed since the older index may be gone (its snapshots expired by
            # maintenance, say): a fresh build needs only the current snapshot.
            _write_index(wh, partial, snapshot, None)
        _check_complete(partial)
        partial.replace(target)
    except BaseException:  # a full disk, say: no half-written file is left, none is installed
        for leftover in (partial, _wal(partial)):
            leftover.unlink(missing_ok=True)
        raise
    for _, old in _indexes_before(wh, snapshot):
        old.unlink(missing_ok=True)
    return target


def _wal(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def _check_complete(partial: Path) -> None:
    """An index file is installed only whole: its write-ahead log merged into it (a file
    renamed without its WAL has lost its tables) and readable in this code's format."""
    if _wal(partial).exists() or not _is_current(partial):
        raise WarehouseError(f"the search index {partial} was not written completely "
                             "(is the disk full?); the next run or search builds it again")


def _write_index(wh: Warehouse, partial: Path, snapshot: int, previous: tuple[int, Path] | None) -> None:
    partial.unlink(missing_ok=True)
    _wal(partial).unlink(missing_ok=True)
    con = wh.connect(read_only=True)
    try:
        # Unbounded, DuckDB's memory grows with the corpus while it indexes.
        wh.bound_memory(con, spill_in=partial.parent, limit=INDEX_MEMORY_LIMIT)
        if previous:
            _update_index(con, previous, partial, snapshot)
        else:
            _attach_index(con, partial, read_only=False)
            _fill_index(con, snapshot)
        # Merge the WAL now, where a failure (a full disk) raises; closing would swallow it.
        con.execute("CHECKPOINT search_index")
    finally:
        con.close()


def index_connection(wh: Warehouse, at: int | None) -> tuple[duckdb.DuckDBPyConnection, int]:
    """A lake connection with the index of snapshot `at` (default: the latest), and that
    snapshot's id: the stored index, else the latest snapshot's is built and kept, an older
    one's built in memory for this search only."""
    con = wh.connect(read_only=True)
    # Capped like the run's own work, spilling to the system's temporary folder (a reader may
    # not write to the warehouse): unbounded, DuckDB keeps every index block it reads, and a
    # concordance over a large corpus holds them all.
    wh.bound_memory(con, spill_in=Path(tempfile.gettempdir()))
    try:
        latest = current_snapshot(con)
        if at is not None:
            check_snapshot(con, at)
        snapshot = latest if at is None else at
        path = index_path(wh, snapshot)
        if path.exists():
            try:
                _attach_index(con, path, read_only=True)
            except duckdb.Error:  # damaged: built again below
                pass
            else:
                if _has_current_format(con):
                    return con, snapshot
                _detach_index(con)
        if snapshot == latest:
            build_index(wh, snapshot)
            _attach_index(con, path, read_only=True)
        else:
            _attach_index(con, ":memory:", read_only=False)
            con.execute("RESET memory_limit")  # an index held in memory needs the room it takes
            _fill_index(con, snapshot)
    except BaseException:
        con.close()
        raise
    return con, snapshot
