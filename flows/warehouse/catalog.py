"""Warehouse: the folder, its catalog, and connections to it.

Takes a warehouse folder (Parquet data files, staging, and the catalog: an embedded SQLite file
there, or a PostgreSQL database that folder names); gives connections with the tables visible
by name (current or at a snapshot), run locks, the snapshot history, diffs, exports and
queries. What the planner reads is in `state`, the one-transaction publish in `publish`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import duckdb

from flows import schemas

DUCKDB_VERSION = "v" + duckdb.__version__
LAKE = "lake"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# DuckDB's memory for the run's own work over the warehouse (planning, publishing) and for
# searches; beyond it, DuckDB spills to disk. Repeat planning and the search index's build have
# lower caps of their own (state.REPEATS_MEMORY_LIMIT, search_index.INDEX_MEMORY_LIMIT), which
# CORPUS_MEMORY_LIMIT does not change. The cap binds on small corpora as on large ones, so a
# run's peak does not grow with the corpus (peak RSS: python benchmarks/bench.py).
MEMORY_LIMIT = os.environ.get("CORPUS_MEMORY_LIMIT", "300MB")


class WarehouseError(RuntimeError):
    """A problem with the warehouse a user can act on (message is shown as is)."""


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


def temp_list(con: duckdb.DuckDBPyConnection, name: str, column: str, values: list[str] | Path) -> None:
    """A one-column temporary table holding `values` (for IN (SELECT ...) filters): a list, or
    a Parquet file with that column (a run's file lists, which never pass through Python)."""
    if isinstance(values, Path):
        con.execute(f"CREATE TEMP TABLE {name} AS SELECT {column} FROM read_parquet({quote(str(values))})")
        return
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
        """Absolute: an ATTACH of it works from any working directory (see `corpus shell`)."""
        url = self.postgres_url()
        return f"ducklake:postgres:{url}" if url else f"ducklake:sqlite:{self.catalog.resolve()}"

    def extensions(self) -> tuple[str, ...]:
        """The DuckDB extensions a connection to this warehouse loads: what its ATTACH needs, and
        full-text search for the search index."""
        return "ducklake", "postgres_scanner" if self.postgres_url() else "sqlite_scanner", "fts"

    def attach_statement(self, read_only: bool = True, snapshot: int | None = None) -> str:
        """ATTACH ... AS lake: read-only (at a snapshot), or for writing; with the data path."""
        data_path = f"DATA_PATH {quote(str(self.data_path.resolve()) + os.sep)}"
        if self.postgres_url():
            # Data files must be found by the same path from every host sharing the catalog:
            # the path stored at creation.
            options = ["READ_ONLY"] if read_only else [data_path]
        else:
            # A SQLite catalog's warehouse is one folder: its data is wherever the folder is now,
            # whatever path (relative to which directory) created it.
            options = (["READ_ONLY"] if read_only else []) + [data_path, "OVERRIDE_DATA_PATH true"]
        if not read_only:
            options.append("DATA_INLINING_ROW_LIMIT 0")

        if snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        return f"ATTACH {quote(self.catalog_uri())} AS {LAKE} ({', '.join(options)})"

    def connect(self, read_only: bool = True, snapshot: int | None = None) -> duckdb.DuckDBPyConnection:
        """A connection with the lake attached and in use, so tables are visible by name.

        Writing connections have a memory limit and spill under staging: a build's memory stays
        flat however big the warehouse (a run's reading queries: `capped_connection`)."""
        if read_only and not self.exists():
            raise WarehouseError(
                f"no warehouse at {self.root}: run `corpus run RAW_DIR --warehouse {self.root}` first"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        # Our extensions are the files of the duckdb_extension_* wheels pinned next to duckdb
        # itself: DuckDB's signature check of them costs a large share of a short query's time
        # on every connection, so it is skipped for them and back on for anything else.
        con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                                     "allow_unsigned_extensions": True})
        load_extensions(con, *self.extensions())
        con.execute("SET allow_unsigned_extensions = false")
        if not read_only:
            self.bound_memory(con)
        if not read_only:
            # A commit that loses a race fails instead of being replayed by DuckLake onto the
            # newer snapshot: publish then redoes the whole transaction (version flags and the
            # run's snapshot id depend on what the other writer committed).
            con.execute("SET ducklake_max_retry_count = 0")
        attach = self.attach_statement(read_only, snapshot)
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
        postgres = self.postgres_url()
        if postgres and not read_only and not self.catalog_url_file.exists():
            self.catalog_url_file.write_text(postgres + "\n")
        return con

    @contextmanager
    def capped_connection(self, spill_in: Path | None = None, lake: bool = False,
                          limit: str = "") -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection under a memory cap (`bound_memory`): the warehouse's, read-only, when
        `lake` and there is one, else a plain one."""
        con = self.connect(read_only=True) if lake and self.exists() else duckdb.connect()
        try:
            self.bound_memory(con, spill_in, limit)
            yield con
        finally:
            con.close()

    def bound_memory(self, con: duckdb.DuckDBPyConnection, spill_in: Path | None = None, limit: str = "") -> None:
        """Cap DuckDB's memory (default MEMORY_LIMIT); what does not fit spills to a folder
        (default: staging)."""
        con.execute(f"SET memory_limit = {quote(limit or MEMORY_LIMIT)}")
        # DuckDB keeps the Parquet it reads in an in-memory file cache beyond the limit above,
        # and a run reads each file once: the cache only raises the peak.
        con.execute("SET enable_external_file_cache = false")
        # One spill folder per process: several writers may share the warehouse folder.
        con.execute(f"SET temp_directory = {quote(str((spill_in or self.staging) / f'duckdb-spill-{os.getpid()}'))}")

    def hash_cache_path(self, collection: str | None = None) -> Path:
        """The hash cache of the last run's files, in path order (see planning.SortedCache)."""
        return self.root / (f"raw_hashes-{collection}.parquet" if collection else "raw_hashes.parquet")

    def staging_for(self, collection: str | None) -> Path:
        """Where a run of `collection` stages: each collection has its own, so cleaning up after
        a killed run never touches another collection's live run."""
        return self.staging / (f"collection-{collection}" if collection else "runs")

    @contextmanager
    def run_lock(self, collection: str | None = None) -> Iterator[None]:
        """Exclusive lock for a run (of one collection): a second run on the same warehouse (and
        collection) fails fast and clearly. Runs of different collections may overlap."""
        lock_path = self.lock_path.with_name(f".run-{collection}.lock") if collection else self.lock_path
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(lock_path, "a+")  # noqa: SIM115 (closed by the with below)
        except OSError as exc:  # a read-only or full file system, a folder of another user
            raise WarehouseError(f"cannot write to warehouse {self.root}: {exc.strerror or exc} ({lock_path})") from None
        with handle:
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
    for snapshot_id, taken, changes, message in con.execute(
        f"SELECT snapshot_id, snapshot_time, changes, commit_message FROM {LAKE}.snapshots() ORDER BY snapshot_id"
    ).fetchall():
        touched = {
            names.get(table_id, table_id)
            for key in ("tables_inserted_into", "tables_deleted_from")
            for table_id in (changes or {}).get(key, [])
        } - {"runs", "line_index"}
        run = runs.get(snapshot_id, {})
        history.append({
            "snapshot_id": snapshot_id,
            "snapshot_time": taken,
            "run_id": run.get("run_id"),
            # A snapshot no run made names what made it (a schema upgrade: flows.warehouse.migrate).
            "data_changes": ", ".join(sorted(touched)) or (message if not run and message else "none"),
            **{k: v for k, v in run.items() if k != "run_id"},
        })
    return history


def export_batches(wh: Warehouse, table: str, snapshot: int, batch_rows: int = 65_536):
    """The rows of `table` as of `snapshot`, in a total deterministic order, as Arrow batches."""
    contract = schemas.table(table)
    order = list(contract.sort_by) + [c for c in contract.column_names if c not in contract.sort_by]
    with wh.connect(read_only=True) as con:
        check_snapshot(con, snapshot)
        try:
            reader = con.execute(
                f"SELECT {', '.join(contract.column_names)} FROM {table} AT (VERSION => {int(snapshot)}) "
                f"ORDER BY {', '.join(order)}"
            ).to_arrow_reader(batch_rows)
        except duckdb.BinderException as exc:
            raise WarehouseError(
                f"table {table} at snapshot {snapshot} does not have the columns of schema "
                f"{schemas.schema_version()}: an older schema's warehouse is upgraded by its next "
                f"`corpus run`; export a snapshot taken after that ({exc})") from exc
        yield from reader


def latest_snapshot(wh: Warehouse) -> int:
    """Id of the newest snapshot."""
    with wh.connect(read_only=True) as con:
        return current_snapshot(con)


def snapshot_time(wh: Warehouse, snapshot: int) -> str:
    with wh.connect(read_only=True) as con:
        check_snapshot(con, snapshot)
        (taken,) = con.execute(
            f"SELECT snapshot_time FROM {LAKE}.snapshots() WHERE snapshot_id = ?", [snapshot]
        ).fetchone()
    return taken.isoformat()


def check_snapshot(con: duckdb.DuckDBPyConnection, snapshot: int) -> None:
    ids = {row[0] for row in con.execute(f"SELECT snapshot_id FROM {LAKE}.snapshots()").fetchall()}
    if snapshot not in ids:
        raise WarehouseError(f"no snapshot {snapshot}: the warehouse has snapshots {min(ids)} to {max(ids)}")


_DIFF_COLUMNS = {"documents": "doc_id, raw_path, raw_sha256, clean_sha256, pipeline_version",
                 "sentences": "sentence_id, text"}


def diff(wh: Warehouse, old: int, new: int) -> dict[str, list[tuple]]:
    """What changed from snapshot `old` to `new`: document and sentence rows, by kind."""
    with wh.connect(read_only=True) as con:
        for snapshot in (old, new):
            check_snapshot(con, snapshot)
        for name, version in (("a", old), ("b", new)):
            for table, columns in _DIFF_COLUMNS.items():
                at = f"{table} AT (VERSION => {int(version)})"
                try:
                    # Schema 2.x called the documents' key version_id (flows.warehouse.migrate).
                    if "version_id" in {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {at}").fetchall()}:
                        columns = columns.replace("doc_id", "version_id AS doc_id")
                    con.execute(f"CREATE TEMP TABLE {table}_{name} AS SELECT {columns} FROM {at}")
                except duckdb.CatalogException:  # the table did not exist yet at that snapshot
                    con.execute(f"CREATE TEMP TABLE {table}_{name} AS SELECT {_DIFF_COLUMNS[table]} FROM {table} LIMIT 0")
        queries = {
            "documents added": "SELECT doc_id, raw_path FROM documents_b WHERE doc_id NOT IN (SELECT doc_id FROM documents_a)",
            "documents removed": "SELECT doc_id, raw_path FROM documents_a WHERE doc_id NOT IN (SELECT doc_id FROM documents_b)",
            "documents changed": (
                "SELECT b.doc_id, b.raw_path FROM documents_b b JOIN documents_a a USING (doc_id) "
                "WHERE a.raw_sha256 <> b.raw_sha256 OR a.clean_sha256 <> b.clean_sha256 "
                "OR a.pipeline_version <> b.pipeline_version"
            ),
            "sentences added": "SELECT sentence_id, text FROM sentences_b WHERE sentence_id NOT IN (SELECT sentence_id FROM sentences_a)",
            "sentences removed": "SELECT sentence_id, text FROM sentences_a WHERE sentence_id NOT IN (SELECT sentence_id FROM sentences_b)",
        }
        return {kind: con.execute(q + " ORDER BY 1").fetchall() for kind, q in queries.items()}


_EXPLAIN_ANALYZE = re.compile(r"\s*EXPLAIN\s+ANALY[SZ]E\b", re.IGNORECASE)


def check_read_only(sql: str) -> list[duckdb.Statement]:
    """Refuse SQL with any statement but a query (SELECT, FROM, WITH, VALUES, DESCRIBE, SHOW,
    SUMMARIZE, PRAGMA of a value, EXPLAIN): the lake is attached read-only, but ATTACH, USE,
    SET, COPY, LOAD or CALL could reach its files another way. DuckDB's own parser says what
    each statement is, so quoting or comments cannot hide one."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise WarehouseError(f"SQL failed: {exc}") from exc
    for statement in statements:
        kind = statement.type
        if kind == duckdb.StatementType.EXPLAIN and _EXPLAIN_ANALYZE.match(statement.query):
            # EXPLAIN ANALYZE runs what it explains.
            inner = duckdb.extract_statements(_EXPLAIN_ANALYZE.sub("", statement.query, count=1))
            kind = inner[0].type if len(inner) == 1 else duckdb.StatementType.INVALID
        if kind not in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
            raise WarehouseError(
                f"only queries run on the warehouse, which is read-only here; refused a {kind.name} "
                f"statement: {' '.join(statement.query.split())[:80]!r} (to save results, use "
                "--output FILE.csv|.parquet|.json, or --format csv > FILE)")
    return statements


def query(wh: Warehouse, sql: str, snapshot: int | None = None,
          on_open: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> tuple[list[str], list[tuple]]:
    """Run read-only SQL (`check_read_only`) with the tables visible by name; (column names,
    rows). `on_open` first sees the connection (to warn about the warehouse, say)."""
    check_read_only(sql)
    with wh.connect(read_only=True, snapshot=snapshot) as con:
        if on_open:
            on_open(con)
        cursor = con.execute(sql)
        if cursor.description is None:
            return [], []
        return [d[0] for d in cursor.description], cursor.fetchall()


_OUTPUT_FORMATS = {".csv": "FORMAT csv, HEADER true", ".parquet": "FORMAT parquet, COMPRESSION zstd",
                   ".json": "FORMAT json, ARRAY true", ".jsonl": "FORMAT json"}


def query_to_file(wh: Warehouse, sql: str, output: Path, snapshot: int | None = None,
                  on_open: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> int:
    """Write the result of one read-only query to `output` (its suffix gives the format), which
    must lie outside the warehouse; the number of rows written. `on_open` as for `query`."""
    if len(check_read_only(sql)) != 1:
        raise WarehouseError("--output takes one query")
    options = _OUTPUT_FORMATS.get(output.suffix.lower())
    if options is None:
        raise WarehouseError(f"{output}: --output needs a file name ending in {', '.join(_OUTPUT_FORMATS)}")
    target = output.resolve()
    if target.is_relative_to(wh.root.resolve()) or target.is_relative_to(wh.data_path.resolve()):
        raise WarehouseError(f"{output}: inside the warehouse {wh.root}; write results elsewhere")
    with wh.connect(read_only=True, snapshot=snapshot) as con:
        if on_open:
            on_open(con)
        (rows,) = con.execute(f"COPY ({sql.strip().rstrip(';')}) TO {quote(str(target))} ({options})").fetchone()
    return rows


def parquet_connection(folder: Path) -> duckdb.DuckDBPyConnection:
    """A connection with a release's tables (folder/data/<table>/<table>.parquet) as views."""
    con = duckdb.connect()
    for table in ("documents", "sentences", "removed", "runs"):
        path = str(folder / "data" / table / f"{table}.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW {table} AS FROM read_parquet('{path}')")
    return con
