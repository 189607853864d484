"""Publish: a run's staged shards committed to the warehouse in ONE DuckLake transaction.

Takes the warehouse, the staged Parquet shards per table, the raw paths they replace, the
sources and the run's row; gives the new snapshot id. Deletes and inserts by raw path, refreshes
the version flags and sources, and redoes the whole transaction when another writer committed
first.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import duckdb

from flows import schemas
from flows.faults import fault_point
from flows.stages.records import SourceInfo
from flows.warehouse.state import check_collection_use
from flows.warehouse.catalog import EMPTY_SHA256, LAKE, Warehouse, WarehouseError, current_snapshot, existing_tables, quote, temp_list


class CommitConflict(WarehouseError):
    """Other runs kept committing first: this run committed nothing and can simply be run again."""


# Errors that a later attempt may not meet: a catalog briefly locked by another process, a
# catalog server restarting. Anything else (a full disk, a schema mismatch) would fail again.
TRANSIENT_ERRORS = ("database is locked", "Unable to connect to Postgres", "server closed the connection")


def is_transient(exc: BaseException | None) -> bool:
    return isinstance(exc, (duckdb.Error, WarehouseError)) and any(t in str(exc) for t in TRANSIENT_ERRORS)


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables from schemas/; add the nullable columns a minor schema version
    appended to a table (in the run's own transaction); refuse to write into a table that
    differs otherwise."""
    present = existing_tables(con)
    for name, contract in schemas.tables().items():
        if name not in present:
            cols = ", ".join(
                f"{col} {sql_type}{'' if c.nullable else ' NOT NULL'}"
                for (col, sql_type), c in zip(contract.duckdb_columns(), contract.columns)
            )
            con.execute(f"CREATE TABLE {name} ({cols})")
            continue
        actual = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = ? AND table_name = ? ORDER BY column_index",
            [LAKE, name],
        ).fetchall()
        expected = contract.duckdb_columns()
        appended = contract.columns[len(actual):]
        if [(c, t) for c, t in actual] == expected[: len(actual)] and all(c.nullable for c in appended):
            for (col, sql_type) in expected[len(actual):]:
                con.execute(f"ALTER TABLE {name} ADD COLUMN {col} {sql_type}")
            continue
        if [(c, t) for c, t in actual] != expected:
            raise schemas.SchemaError(
                f"warehouse table {name} has columns {actual}, schemas/{name}.toml says "
                f"{contract.duckdb_columns()}: migrate the warehouse or use a new one"
            )


# Staged Parquet per INSERT: a statement's memory follows what it reads, so a bound in bytes
# (not in shards, whose size grows with the corpus) keeps publishing's peak flat; smaller
# batches lower it little and cost time (the publish stage of python benchmarks/bench.py).
INSERT_BYTES = 8 * 2**20


def _batches(files: list[Path], budget: int) -> list[list[Path]]:
    """Consecutive runs of `files` of at most `budget` bytes each (a larger file alone)."""
    batches: list[list[Path]] = []
    size = 0
    for path in files:
        file_size = path.stat().st_size
        if not batches or size + file_size > budget:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += file_size
    return batches


def _insert_staged(con: duckdb.DuckDBPyConnection, table: str, files: list[Path]) -> None:
    """Append the staged shards in shard order, up to INSERT_BYTES of them at a time. Each
    shard is already sorted (flows.run.shards) and DuckDB keeps insertion order, so the data is
    deterministic without a global sort, and memory stays flat however many shards there are
    (one INSERT of every shard of a large build runs out of memory)."""
    columns = ", ".join(schemas.table(table).column_names)
    for batch in _batches(files, INSERT_BYTES):
        paths = "[" + ", ".join(quote(str(p)) for p in batch) + "]"
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM read_parquet({paths})")


def _replace_sources(con: duckdb.DuckDBPyConnection, sources: list[SourceInfo], only_these: bool) -> None:
    """Make the sources table hold `sources`: all of it, or (`only_these`, a collection's run)
    just those source ids, leaving other collections' sources alone."""
    rows = sorted((s.source_id, s.name, s.kind, s.homepage, s.notes) for s in sources)
    temp_list(con, "run_sources", "source_id", [row[0] for row in rows])
    which = "WHERE source_id IN (SELECT source_id FROM run_sources)" if only_these else ""
    current = con.execute(f"SELECT source_id, name, kind, homepage, notes FROM sources {which} ORDER BY ALL").fetchall()
    if current == rows:
        return
    con.execute(f"DELETE FROM sources {which}")
    con.executemany("INSERT INTO sources VALUES (?, ?, ?, ?, ?)", rows)


# Which version of a document is the latest, and which first had a given clean text: both
# depend on every row, so they are recomputed over the (small) key columns at each publish, and
# only the rows whose flags change are updated.
_VERSION_FLAGS = f"""
    SELECT doc_id,
           row_number() OVER (PARTITION BY page_id ORDER BY fetched DESC NULLS LAST,
                              raw_path DESC, raw_record DESC NULLS LAST) = 1 AS latest,
           CASE WHEN clean_text_empty THEN NULL ELSE nullif(first_value(doc_id) OVER (
                PARTITION BY clean_sha256 ORDER BY raw_path, raw_record NULLS FIRST), doc_id) END AS first
    FROM (SELECT doc_id, page_id, fetched, raw_path, raw_record, clean_sha256,
                 clean_sha256 = '{EMPTY_SHA256}' AS clean_text_empty FROM documents)
"""


def refresh_version_flags(con: duckdb.DuckDBPyConnection) -> int:
    """Set documents.is_latest and duplicate_of where they changed; the number of rows updated."""
    (updated,) = con.execute(
        f"UPDATE documents SET is_latest = f.latest, duplicate_of = f.first FROM ({_VERSION_FLAGS}) f "
        "WHERE documents.doc_id = f.doc_id "
        "AND (documents.is_latest IS DISTINCT FROM f.latest OR documents.duplicate_of IS DISTINCT FROM f.first)"
    ).fetchone()
    return updated


COMMIT_ATTEMPTS = 8  # against a busy shared catalog; the waits double, with jitter


def publish(
    wh: Warehouse,
    staged: dict[str, list[Path]],
    replace_paths: list[str] | Path,  # or a Parquet file of them (warehouse.temp_list)
    sources: list[SourceInfo],
    run_row: dict,
    collection: str | None = None,
    on_retry=lambda message: None,
    in_process=lambda function, *args: function(*args),
) -> int:
    """Commit a run in ONE DuckLake transaction: replace rows of `replace_paths` with the
    staged shards, refresh sources, append the run row (with the number of sentences deleted).
    Returns the new snapshot id.

    Nothing is visible to readers until COMMIT; any error rolls the whole run back. When another
    writer committed first, the whole transaction is done again on top of its snapshot (after a
    growing, jittered wait), so flags and the run's snapshot id are computed on what is committed.
    `in_process(function, *args)` runs each attempt (the flow's runs it in a fresh process).
    """
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return in_process(_publish_once, wh, staged, replace_paths, sources, run_row, collection)
        except duckdb.TransactionException as exc:
            if attempt == COMMIT_ATTEMPTS:
                raise CommitConflict(
                    f"other runs committed first {attempt} times in a row; nothing was committed: "
                    f"run again ({str(exc).splitlines()[0]})"
                ) from exc
            wait = 0.25 * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            on_retry(f"another writer committed first; publishing again in {wait:.1f} s "
                     f"(attempt {attempt + 1} of {COMMIT_ATTEMPTS})")
            time.sleep(wait)
    raise AssertionError("unreachable")


def _publish_once(wh, staged, replace_paths, sources, run_row, collection) -> int:
    con = wh.connect(read_only=False)
    try:
        con.execute("BEGIN TRANSACTION")
        _ensure_tables(con)
        check_collection_use(con, collection)
        base = current_snapshot(con)
        snapshot_id = (base or 0) + 1
        if replace_paths:
            temp_list(con, "replace_paths", "raw_path", replace_paths)
            versions = "SELECT doc_id FROM documents WHERE raw_path IN (SELECT raw_path FROM replace_paths)"
            for table in ("sentences", "removed", "edits", "line_index"):
                (deleted,) = con.execute(f"DELETE FROM {table} WHERE doc_id IN ({versions})").fetchone()
                run_row = dict(run_row, n_sentences_deleted=deleted) if table == "sentences" else run_row
            for table in ("documents", "rejects", "files"):
                con.execute(f"DELETE FROM {table} WHERE raw_path IN (SELECT raw_path FROM replace_paths)")
        for table in ("documents", "sentences", "removed", "edits", "line_index", "rejects", "files"):
            _insert_staged(con, table, staged.get(table, []))
        if replace_paths or staged.get("documents"):
            refresh_version_flags(con)
        _replace_sources(con, sources, only_these=collection is not None)
        row = dict({"n_sentences_deleted": 0}, **run_row, base_snapshot_id=base, snapshot_id=snapshot_id,
                   collection=collection)
        row["stage_seconds"] = json.dumps(row["stage_seconds"], sort_keys=True)
        columns = schemas.table("runs").column_names
        con.execute(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [row[c] for c in columns],
        )
        fault_point("publish")
        con.execute(
            f"CALL {LAKE}.set_commit_message('corpus', ?, extra_info => ?)",
            [f"run {row['run_id']}", json.dumps({"run_id": row["run_id"]})],
        )
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    finally:
        con.close()
    return snapshot_id


# Another collection's run may be between writing its files and committing them: its files
# are only taken for orphans once older than any publish takes.
COLLECTION_ORPHAN_AGE = "1 day"


def remove_orphans(wh: Warehouse, collection: str | None) -> int:
    """Delete data files no snapshot references (left by a publish that was killed, or that a
    full disk cut short), with DuckLake's own cleanup; how many. Called after a successful
    publish under the run lock: a whole-warehouse run is the only writer, so every orphan is
    a dead run's; with collections, only files older than COLLECTION_ORPHAN_AGE go."""
    when = "cleanup_all => true" if collection is None else f"older_than => now() - INTERVAL '{COLLECTION_ORPHAN_AGE}'"
    con = wh.connect(read_only=False)
    try:
        return len(con.execute(f"CALL ducklake_delete_orphaned_files('{LAKE}', {when})").fetchall())
    finally:
        con.close()
