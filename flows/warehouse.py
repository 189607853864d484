"""Warehouse: the only module that opens DuckDB connections or speaks DuckLake's SQL.

Takes a warehouse folder (Parquet data files, staging, and the catalog: an embedded SQLite file
there, or a PostgreSQL database that folder names) and staged Parquet shards; gives connections
with the tables visible by name (current or at a snapshot), the file state the planner needs
(for the whole warehouse or one collection of it), one-transaction publishing that retries when
another writer committed first, and the snapshot history.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import duckdb

from . import schemas
from .faults import fault_point
from .records import SourceInfo

DUCKDB_VERSION = "v" + duckdb.__version__
LAKE = "lake"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


WRITE_MEMORY_LIMIT = os.environ.get("CORPUS_WRITE_MEMORY_LIMIT", "1GB")


class WarehouseError(RuntimeError):
    """A problem with the warehouse a user can act on (message is shown as is)."""


class CommitConflict(WarehouseError):
    """Other runs kept committing first: this run committed nothing and can simply be run again."""


# Errors that a later attempt may not meet: a catalog briefly locked by another process, a
# catalog server restarting. Anything else (a full disk, a schema mismatch) would fail again.
TRANSIENT_ERRORS = ("database is locked", "Unable to connect to Postgres", "server closed the connection")


def is_transient(exc: BaseException | None) -> bool:
    return isinstance(exc, (duckdb.Error, WarehouseError)) and any(t in str(exc) for t in TRANSIENT_ERRORS)


POSTGRES_SCHEMES = ("postgres://", "postgresql://")
COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_catalog_url(url: str) -> str:
    """A PostgreSQL URL for the catalog; refused with the reason otherwise."""
    if not url.startswith(POSTGRES_SCHEMES):
        raise WarehouseError(f"catalog {url!r} is not a PostgreSQL URL (postgresql://USER@HOST:PORT/DATABASE)")
    if re.match(r"postgres(ql)?://[^/@]*:[^/@]*@", url):
        # The URL is written into the warehouse folder for every host and reader to find.
        raise WarehouseError("the catalog URL holds a password: put it in ~/.pgpass or $PGPASSWORD instead")
    return url


def check_collection(name: str | None) -> str | None:
    if name is not None and not COLLECTION_NAME.fullmatch(name):
        raise WarehouseError(f"collection name {name!r}: use letters, digits, '_', '-' or '.' (at most 64)")
    return name


def extension_path(name: str) -> Path:
    """The extension binary shipped in the duckdb-extension-<name> wheel (no download)."""
    package = f"duckdb_extension_{name}"
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WarehouseError(f"DuckDB extension package {package} is not installed")
    base = Path(next(iter(spec.submodule_search_locations)))
    path = base / "extensions" / DUCKDB_VERSION / f"{name}.duckdb_extension"
    if not path.exists():
        raise WarehouseError(f"{path} is missing: reinstall {package}=={duckdb.__version__}")
    return path


def load_extensions(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    for name in names:
        con.execute(f"LOAD '{extension_path(name)}'")


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _temp_list(con: duckdb.DuckDBPyConnection, name: str, column: str, values: list[str]) -> None:
    """A one-column temporary table holding `values` (for IN (SELECT ...) filters)."""
    con.execute(f"CREATE TEMP TABLE {name} ({column} VARCHAR)")
    if values:
        con.executemany(f"INSERT INTO {name} VALUES (?)", [[v] for v in values])


@dataclass(frozen=True)
class Warehouse:
    """A warehouse folder. `catalog_url` (postgresql://...) puts the catalog in PostgreSQL; the
    folder then remembers it in catalog.url, so later commands need only the folder."""

    root: Path
    catalog_url: str | None = None

    def __post_init__(self) -> None:
        if self.catalog_url is not None:
            check_catalog_url(self.catalog_url)

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def catalog_url_file(self) -> Path:
        return self.root / "catalog.url"

    def postgres_url(self) -> str | None:
        """The PostgreSQL catalog's URL, or None for the embedded SQLite catalog."""
        try:
            remembered = self.catalog_url_file.read_text().strip()
        except FileNotFoundError:
            remembered = None
        if self.catalog_url is None:
            return remembered
        if remembered is not None and remembered != self.catalog_url:
            raise WarehouseError(f"warehouse {self.root} has its catalog at {remembered}, not {self.catalog_url}")
        if remembered is None and self.catalog.exists():
            raise WarehouseError(f"warehouse {self.root} has an embedded catalog ({self.catalog}): "
                                 "use another folder for a PostgreSQL catalog")
        return self.catalog_url

    @property
    def data_path(self) -> Path:
        return self.root / "data"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def lock_path(self) -> Path:
        return self.root / ".run.lock"

    def exists(self) -> bool:
        return self.catalog_url_file.exists() if self.postgres_url() else self.catalog.exists()

    def catalog_uri(self) -> str:
        url = self.postgres_url()
        return f"ducklake:postgres:{url}" if url else f"ducklake:sqlite:{self.catalog}"

    def connect(self, read_only: bool = True, snapshot: int | None = None, bounded: bool = False) -> duckdb.DuckDBPyConnection:
        """A connection with the lake attached and in use, so tables are visible by name.

        Writing connections, and `bounded` ones (the run's own queries), have a memory limit
        and spill under staging: a build's memory stays flat however big the warehouse."""
        if read_only and not self.exists():
            raise WarehouseError(
                f"no warehouse at {self.root}: run `corpus run RAW_DIR --warehouse {self.root}` first"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        )
        postgres = self.postgres_url()
        load_extensions(con, "ducklake", "postgres_scanner" if postgres else "sqlite_scanner")
        if bounded or not read_only:
            self.bound_memory(con)
        # Data files must be found by the same path from every host sharing a PostgreSQL catalog.
        data_path = self.data_path.resolve() if postgres else self.data_path
        options = ["READ_ONLY"] if read_only else [
            f"DATA_PATH {quote(str(data_path) + os.sep)}",
            "DATA_INLINING_ROW_LIMIT 0",
        ]
        if not read_only:
            # A commit that loses a race fails instead of being replayed by DuckLake onto the
            # newer snapshot: publish then redoes the whole transaction (version flags and the
            # run's snapshot id depend on what the other writer committed).
            con.execute("SET ducklake_max_retry_count = 0")
        if snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        attach = f"ATTACH {quote(self.catalog_uri())} AS {LAKE} ({', '.join(options)})"
        for attempt in range(1, 6):
            try:
                con.execute(attach)
                break
            except duckdb.Error as exc:
                # Two hosts' first runs both create a new catalog: the one that loses finds it made.
                if "Failed to initialize DuckLake" in str(exc) and attempt < 5:
                    time.sleep(0.2 * attempt)
                    continue
                con.close()
                raise WarehouseError(f"cannot open warehouse {self.root}: {exc}") from exc
        con.execute(f"USE {LAKE}")
        if postgres and not read_only and not self.catalog_url_file.exists():
            self.catalog_url_file.write_text(postgres + "\n")
        return con

    def bound_memory(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"SET memory_limit = {quote(WRITE_MEMORY_LIMIT)}")
        # One spill folder per process: several writers may share the warehouse folder.
        con.execute(f"SET temp_directory = {quote(str(self.staging / f'duckdb-spill-{os.getpid()}'))}")

    def hash_cache_path(self, collection: str | None = None) -> Path:
        return self.root / (f"raw_hashes-{collection}.json" if collection else "raw_hashes.json")

    def load_hash_cache(self, collection: str | None = None) -> dict:
        """{raw_path: (stat key, sha256)} of the last run's files: lets an incremental run skip
        re-reading unchanged files. Only a cache: anything unreadable means an empty one."""
        try:
            cached = json.loads(self.hash_cache_path(collection).read_text())
            return {path: (tuple(key), sha) for path, (key, sha) in cached.items()}
        except (OSError, ValueError, TypeError):
            return {}

    def save_hash_cache(self, hashes: dict, collection: str | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.hash_cache_path(collection)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(hashes, sort_keys=True))
        tmp.replace(path)

    def staging_for(self, collection: str | None) -> Path:
        """Where a run of `collection` stages: each collection has its own, so cleaning up after
        a killed run never touches another collection's live run."""
        return self.staging / (f"collection-{collection}" if collection else "runs")

    @contextmanager
    def run_lock(self, collection: str | None = None) -> Iterator[None]:
        """Exclusive lock for a run (of one collection): a second run on the same warehouse (and
        collection) fails fast and clearly. Runs of different collections may overlap."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock_path = self.lock_path.with_name(f".run-{collection}.lock") if collection else self.lock_path
        with open(lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise WarehouseError(
                    f"warehouse {self.root}{f' (collection {collection})' if collection else ''} "
                    f"is busy: a run is in progress ({holder}); "
                    "try again when it has finished"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            try:
                yield
            finally:
                handle.truncate(0)
                fcntl.flock(handle, fcntl.LOCK_UN)


# --- reading ---------------------------------------------------------------------------------


def existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [LAKE]
    ).fetchall()
    return {r[0] for r in rows}


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int | None:
    row = con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def in_collection(collection: str | None, column: str = "raw_path") -> str:
    """SQL condition: the row's raw file belongs to `collection` (None: the whole warehouse)."""
    return f"starts_with({column}, {quote(collection + '/')})" if collection else "true"


def check_collection_use(con: duckdb.DuckDBPyConnection, collection: str | None) -> None:
    """A warehouse is written either whole (one raw folder) or by collections: a whole-folder
    run would take the collections' files for deleted ones, and the other way round."""
    if "runs" not in existing_tables(con):
        return
    used = {row[0] for row in con.execute("SELECT DISTINCT collection FROM runs").fetchall()}
    if collection is None and used - {None}:
        names = ", ".join(sorted(used - {None}))
        raise WarehouseError(f"this warehouse is written by collections ({names}): run with --collection NAME")
    if collection is not None and None in used:
        raise WarehouseError("this warehouse is written from one raw folder without --collection: "
                             "collections need a warehouse of their own")


def inventory_rejects(
    con: duckdb.DuckDBPyConnection, paths_in_raw: set[str], collection: str | None = None
) -> set[tuple[str, str, str]]:
    """Stored rejects of the collection that are not about a file in the raw folder (sidecar,
    unreadable files)."""
    if "rejects" not in existing_tables(con):
        return set()
    rows = con.execute(f"SELECT raw_path, error_kind, message FROM rejects WHERE {in_collection(collection)}").fetchall()
    return {tuple(r) for r in rows if r[0] not in paths_in_raw}


def file_state(con: duckdb.DuckDBPyConnection, collection: str | None = None) -> dict[str, tuple[str | None, str]]:
    """{raw_path: (raw_sha256, pipeline_version)} of every file read (the files table), in the
    collection or the whole warehouse."""
    if "files" not in existing_tables(con):
        return {}
    rows = con.execute(
        f"SELECT raw_path, raw_sha256, pipeline_version FROM files WHERE {in_collection(collection)}"
    ).fetchall()
    return {path: (sha, version) for path, sha, version in rows}


def _table_names(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(f"SELECT table_id, table_name FROM __ducklake_metadata_{LAKE}.ducklake_table").fetchall()
    return {str(table_id): name for table_id, name in rows}


def snapshots(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Snapshot history with the run that made each and the data tables it changed."""
    has_runs = "runs" in existing_tables(con)
    names = _table_names(con)
    runs = {}
    if has_runs:
        cursor = con.execute(
            "SELECT snapshot_id, run_id, code_version, n_new, n_changed, n_context_changed, "
            "n_unchanged, n_deleted, n_rejected, n_documents, n_sentences FROM runs"
        )
        columns = [d[0] for d in cursor.description]
        runs = {row[0]: dict(zip(columns[1:], row[1:])) for row in cursor.fetchall()}
    history = []
    for snapshot_id, time, changes in con.execute(
        f"SELECT snapshot_id, snapshot_time, changes FROM {LAKE}.snapshots() ORDER BY snapshot_id"
    ).fetchall():
        touched = {
            names.get(table_id, table_id)
            for key in ("tables_inserted_into", "tables_deleted_from")
            for table_id in (changes or {}).get(key, [])
        } - {"runs", "line_index"}
        run = runs.get(snapshot_id, {})
        history.append({
            "snapshot_id": snapshot_id,
            "snapshot_time": time,
            "run_id": run.get("run_id"),
            "data_changes": ", ".join(sorted(touched)) or "none",
            **{k: v for k, v in run.items() if k != "run_id"},
        })
    return history


def export_batches(wh: Warehouse, table: str, snapshot: int, batch_rows: int = 65_536):
    """The rows of `table` as of `snapshot`, in a total deterministic order, as Arrow batches."""
    contract = schemas.table(table)
    order = list(contract.sort_by) + [c for c in contract.column_names if c not in contract.sort_by]
    with wh.connect(read_only=True) as con:
        check_snapshot(con, snapshot)
        reader = con.execute(
            f"SELECT {', '.join(contract.column_names)} FROM {table} AT (VERSION => {int(snapshot)}) "
            f"ORDER BY {', '.join(order)}"
        ).to_arrow_reader(batch_rows)
        yield from reader


def latest_snapshot(wh: Warehouse) -> int:
    """Id of the newest snapshot."""
    with wh.connect(read_only=True) as con:
        return current_snapshot(con)


def snapshot_time(wh: Warehouse, snapshot: int) -> str:
    with wh.connect(read_only=True) as con:
        check_snapshot(con, snapshot)
        (time,) = con.execute(
            f"SELECT snapshot_time FROM {LAKE}.snapshots() WHERE snapshot_id = ?", [snapshot]
        ).fetchone()
    return time.isoformat()


def check_snapshot(con: duckdb.DuckDBPyConnection, snapshot: int) -> None:
    ids = {row[0] for row in con.execute(f"SELECT snapshot_id FROM {LAKE}.snapshots()").fetchall()}
    if snapshot not in ids:
        raise WarehouseError(f"no snapshot {snapshot}: the warehouse has snapshots {min(ids)} to {max(ids)}")


def diff(wh: Warehouse, old: int, new: int) -> dict[str, list[tuple]]:
    """What changed from snapshot `old` to `new`: document and sentence rows, by kind."""
    with wh.connect(read_only=True) as con:
        for snapshot in (old, new):
            check_snapshot(con, snapshot)
        for name, version in (("a", old), ("b", new)):
            for table in ("documents", "sentences"):
                try:
                    con.execute(f"CREATE TEMP TABLE {table}_{name} AS "
                                f"SELECT * FROM {table} AT (VERSION => {int(version)})")
                except duckdb.Error:  # the table did not exist yet at that snapshot
                    con.execute(f"CREATE TEMP TABLE {table}_{name} AS SELECT * FROM {table} LIMIT 0")
        queries = {
            "documents added": "SELECT version_id, raw_path FROM documents_b WHERE version_id NOT IN (SELECT version_id FROM documents_a)",
            "documents removed": "SELECT version_id, raw_path FROM documents_a WHERE version_id NOT IN (SELECT version_id FROM documents_b)",
            "documents changed": (
                "SELECT b.version_id, b.raw_path FROM documents_b b JOIN documents_a a USING (version_id) "
                "WHERE a.raw_sha256 <> b.raw_sha256 OR a.clean_sha256 <> b.clean_sha256 "
                "OR a.pipeline_version <> b.pipeline_version"
            ),
            "sentences added": "SELECT sentence_id, text FROM sentences_b WHERE sentence_id NOT IN (SELECT sentence_id FROM sentences_a)",
            "sentences removed": "SELECT sentence_id, text FROM sentences_a WHERE sentence_id NOT IN (SELECT sentence_id FROM sentences_b)",
        }
        return {kind: con.execute(q + " ORDER BY 1").fetchall() for kind, q in queries.items()}


def repeat_plan(
    wh: Warehouse, fingerprints: list[Path], gone_paths: list[str], min_docs: int,
    collection: str | None = None,
) -> tuple[dict[str, set[int]], list[str]]:
    """Lines repeated across a source's distinct documents after this run, and the unchanged files
    whose output that changes (they hold a line that starts or stops being a repeat).

    `fingerprints` are staged line_index rows of the files about to be processed;
    `gone_paths` are raw files whose documents this run replaces or deletes. Repeats are counted
    within the collection, so its rows do not depend on when other collections commit.
    """
    stored = wh.exists()
    with (wh.connect(read_only=True, bounded=True) if stored else duckdb.connect()) as con:
        if not stored:
            wh.bound_memory(con)
        if not (stored and "line_index" in existing_tables(con)):
            con.execute("CREATE TEMP TABLE old_index "
                        "(version_id VARCHAR, source_id VARCHAR, text_sha256 VARCHAR, line_hash BIGINT)")
            con.execute("CREATE TEMP TABLE old_docs (version_id VARCHAR, raw_path VARCHAR)")
        else:
            con.execute("CREATE TEMP TABLE old_docs AS SELECT version_id, raw_path FROM documents "
                        f"WHERE {in_collection(collection)}")
            con.execute("CREATE TEMP TABLE old_index AS "
                        "SELECT version_id, source_id, text_sha256, line_hash FROM line_index"
                        + ("" if collection is None else " WHERE version_id IN (SELECT version_id FROM old_docs)"))
        _temp_list(con, "gone_paths", "raw_path", gone_paths)
        con.execute("CREATE TEMP TABLE gone AS SELECT version_id FROM old_docs "
                    "WHERE raw_path IN (SELECT raw_path FROM gone_paths)")
        fresh = "SELECT version_id, source_id, text_sha256, line_hash FROM " + (
            f"read_parquet([{', '.join(quote(str(p)) for p in fingerprints)}])" if fingerprints
            else "old_index WHERE false"
        )
        con.execute(
            "CREATE TEMP TABLE new_index AS SELECT * FROM old_index "
            f"WHERE version_id NOT IN (SELECT version_id FROM gone) UNION ALL {fresh}"
        )
        repeated = (
            "SELECT source_id, line_hash FROM {} GROUP BY source_id, line_hash "
            f"HAVING count(DISTINCT text_sha256) >= {int(min_docs)}"  # duplicate documents count once
        )
        con.execute(f"CREATE TEMP TABLE new_rep AS {repeated.format('new_index')}")
        con.execute(f"CREATE TEMP TABLE old_rep AS {repeated.format('old_index')}")
        repeats: dict[str, set[int]] = {}
        for source_id, line_hash in con.execute("SELECT * FROM new_rep ORDER BY ALL").fetchall():
            repeats.setdefault(source_id, set()).add(line_hash)
        affected = con.execute(
            "WITH flipped AS ((SELECT * FROM new_rep EXCEPT SELECT * FROM old_rep) "
            "UNION (SELECT * FROM old_rep EXCEPT SELECT * FROM new_rep)) "
            "SELECT DISTINCT d.raw_path FROM old_index i JOIN flipped USING (source_id, line_hash) "
            "JOIN old_docs d USING (version_id) WHERE i.version_id NOT IN (SELECT version_id FROM gone) ORDER BY 1"
        ).fetchall()
    return repeats, [row[0] for row in affected]


# --- writing ---------------------------------------------------------------------------------


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables from schemas/; refuse to write into a table that differs."""
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
        if [(c, t) for c, t in actual] != contract.duckdb_columns():
            raise schemas.SchemaError(
                f"warehouse table {name} has columns {actual}, schemas/{name}.toml says "
                f"{contract.duckdb_columns()}: migrate the warehouse or use a new one"
            )


INSERT_SHARDS = 16  # staged shards per INSERT: memory per statement stays bounded, few data files


def _insert_staged(con: duckdb.DuckDBPyConnection, table: str, files: list[Path]) -> None:
    """Append the staged shards in shard order, INSERT_SHARDS at a time. Each shard is already
    sorted (pipeline) and DuckDB keeps insertion order, so the data is deterministic without a
    global sort, and memory stays flat however many shards there are (one INSERT of all 169
    shards of a 1 GB build ran out of a 768 MB limit)."""
    columns = ", ".join(schemas.table(table).column_names)
    for start in range(0, len(files), INSERT_SHARDS):
        paths = "[" + ", ".join(quote(str(p)) for p in files[start : start + INSERT_SHARDS]) + "]"
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM read_parquet({paths})")


def _replace_sources(con: duckdb.DuckDBPyConnection, sources: list[SourceInfo], only_these: bool) -> None:
    """Make the sources table hold `sources`: all of it, or (`only_these`, a collection's run)
    just those source ids, leaving other collections' sources alone."""
    rows = sorted((s.source_id, s.name, s.kind, s.homepage, s.notes) for s in sources)
    _temp_list(con, "run_sources", "source_id", [row[0] for row in rows])
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
    SELECT version_id,
           row_number() OVER (PARTITION BY doc_id ORDER BY fetched DESC NULLS LAST,
                              raw_path DESC, raw_record DESC NULLS LAST) = 1 AS latest,
           CASE WHEN clean_text_empty THEN NULL ELSE nullif(first_value(version_id) OVER (
                PARTITION BY clean_sha256 ORDER BY raw_path, raw_record NULLS FIRST), version_id) END AS first
    FROM (SELECT version_id, doc_id, fetched, raw_path, raw_record, clean_sha256,
                 clean_sha256 = '{EMPTY_SHA256}' AS clean_text_empty FROM documents)
"""


def refresh_version_flags(con: duckdb.DuckDBPyConnection) -> int:
    """Set documents.is_latest and duplicate_of where they changed; the number of rows updated."""
    (updated,) = con.execute(
        f"UPDATE documents SET is_latest = f.latest, duplicate_of = f.first FROM ({_VERSION_FLAGS}) f "
        "WHERE documents.version_id = f.version_id "
        "AND (documents.is_latest IS DISTINCT FROM f.latest OR documents.duplicate_of IS DISTINCT FROM f.first)"
    ).fetchone()
    return updated


COMMIT_ATTEMPTS = 8  # against a busy shared catalog; waits of 0.25 s doubling, with jitter


def publish(
    wh: Warehouse,
    staged: dict[str, list[Path]],
    replace_paths: list[str],
    sources: list[SourceInfo],
    run_row: dict,
    collection: str | None = None,
    on_retry=lambda message: None,
) -> int:
    """Commit a run in ONE DuckLake transaction: replace rows of `replace_paths` with the
    staged shards, refresh sources, append the run row (with the number of sentences deleted).
    Returns the new snapshot id.

    Nothing is visible to readers until COMMIT; any error rolls the whole run back. When another
    writer committed first, the whole transaction is done again on top of its snapshot (after a
    growing, jittered wait), so flags and the run's snapshot id are computed on what is committed.
    """
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return _publish_once(wh, staged, replace_paths, sources, run_row, collection)
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
            _temp_list(con, "replace_paths", "raw_path", replace_paths)
            versions = "SELECT version_id FROM documents WHERE raw_path IN (SELECT raw_path FROM replace_paths)"
            for table in ("sentences", "removed", "edits", "line_index"):
                (deleted,) = con.execute(f"DELETE FROM {table} WHERE version_id IN ({versions})").fetchone()
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


def query(wh: Warehouse, sql: str, snapshot: int | None = None) -> tuple[list[str], list[tuple]]:
    """Run read-only SQL with the tables visible by name; (column names, rows)."""
    with wh.connect(read_only=True, snapshot=snapshot) as con:
        cursor = con.execute(sql)
        if cursor.description is None:
            return [], []
        return [d[0] for d in cursor.description], cursor.fetchall()
