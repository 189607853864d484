"""Planning: which files a run reads, replaces and deletes, kept on disk, not in the flow's memory.

Takes the raw folder, the warehouse and a folder of the run's staging; gives a `RunPlan`: the
counts of new, changed, unchanged and deleted files, the inventory's sources and rejects, and
Parquet lists of files in path order, from which each shard task reads its own slice
(`pipeline.FileRange`). The inventory streams from the folder walk to Parquet; the hash cache
is read and rewritten alongside it, in the same path order; the comparison with the
warehouse's file state is a join in DuckDB under the memory cap. The lines repeated across a
source's documents are kept on disk too (`state.repeat_plan`), and each shard task reads its
own sources' (`process_planned_shard`). Only rejects, sources and the files a change of
repeated lines touches stay in Python, so the flow's process does not grow with the corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from flows.warehouse import state
from flows.stages.ingest import Scan
from flows.run.shards import FILE_COLUMNS, FileRange, ShardResult, file_list_row, process_shard, shard_size_for
from flows.stages.version import pipeline_version
from flows.stages.records import Reject, SourceInfo
from flows.warehouse import Warehouse, quote, temp_list

if TYPE_CHECKING:  # connections come from the warehouse (Warehouse.capped_connection)
    import duckdb

CACHE_COLUMNS = pa.schema([("raw_path", pa.string()), ("entry", pa.string())])
BATCH_ROWS = 10_000  # rows per write and per row group: a shard reads only its own row groups


class SortedCache:
    """The previous run's hash cache ({raw_path: "<stat key> <sha256>"}), read alongside a walk
    in the same path order, one batch at a time: `get` must be asked in increasing path order.
    Only a cache: anything unreadable counts as empty from there on."""

    def __init__(self, path: Path) -> None:
        self._batches = self._read(path)
        self._paths: list[str] = []
        self._entries: list[str] = []
        self._at = 0

    @staticmethod
    def _read(path: Path) -> Iterator[tuple[list, list]]:
        try:
            for batch in pq.ParquetFile(path).iter_batches(BATCH_ROWS, columns=CACHE_COLUMNS.names):
                yield batch.column(0).to_pylist(), batch.column(1).to_pylist()
        except (OSError, ValueError, KeyError, pa.ArrowException):
            return

    def get(self, raw_path: str) -> str | None:
        while True:
            while self._at < len(self._paths):
                here = self._paths[self._at]
                if here >= raw_path:
                    return self._entries[self._at] if here == raw_path else None
                self._at += 1
            batch = next(self._batches, None)
            if batch is None:
                return None
            (self._paths, self._entries), self._at = batch, 0


@contextmanager
def parquet_rows(path: Path, schema: pa.Schema) -> Iterator[Callable[[tuple], None]]:
    """An `add(row)` that appends rows to a Parquet file BATCH_ROWS at a time. The file appears
    under its name only when the block ends without an error."""
    tmp = path.with_name(path.name + ".tmp")
    pending: list[tuple] = []
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            def flush() -> None:
                writer.write_table(pa.table(list(zip(*pending)), schema=schema), row_group_size=BATCH_ROWS)
                pending.clear()

            def add(row: tuple) -> None:
                pending.append(row)
                if len(pending) >= BATCH_ROWS:
                    flush()

            yield add
            if pending:
                flush()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


@dataclass(frozen=True)
class PlanLists:
    """Where a run's plan keeps its file lists: Parquet, in path order. Lists of files hold
    FILE_COLUMNS (and a `seq` where shards are cut from them); lists of paths, raw_path."""

    folder: Path

    @property
    def inventory(self) -> Path:  # every file found
        return self.folder / "inventory.parquet"

    @property
    def read(self) -> Path:  # the new and changed files, with seq
        return self.folder / "read.parquet"

    @property
    def gone(self) -> Path:  # paths whose rows this run replaces or deletes (repeat planning)
        return self.folder / "gone.parquet"

    @property
    def unchanged(self) -> Path:  # the unchanged files
        return self.folder / "unchanged.parquet"

    @property
    def process(self) -> Path:  # the files processed: read, and unchanged ones whose repeats changed; with seq
        return self.folder / "process.parquet"

    @property
    def replace(self) -> Path:  # paths whose rows the publish replaces or deletes
        return self.folder / "replace.parquet"


@dataclass(frozen=True)
class RunPlan:
    """A run's plan: what the inventory found and how it compares with the warehouse."""

    lists: PlanLists
    counts: dict[str, int]  # files, new, changed, unchanged, deleted
    sources: list[SourceInfo]
    rejects: list[Reject]
    inventory_changed: bool  # the inventory's own rejects differ from the stored ones
    inventory_paths: list[str]  # raw paths those rejects are about (fresh and stored)


def plan(raw_dir: Path, wh: Warehouse, collection: str | None, folder: Path) -> RunPlan:
    """Inventory `raw_dir` into `folder`, rewrite the hash cache, and compare the inventory with
    the warehouse's file state (of the collection)."""
    folder.mkdir(parents=True, exist_ok=True)
    lists = PlanLists(folder)
    wh.hash_cache_path(collection).with_suffix(".json").unlink(missing_ok=True)  # the format before Parquet
    scan = Scan(raw_dir, SortedCache(wh.hash_cache_path(collection)), collection)
    wh.root.mkdir(parents=True, exist_ok=True)
    with parquet_rows(lists.inventory, FILE_COLUMNS) as add_file, \
            parquet_rows(wh.hash_cache_path(collection), CACHE_COLUMNS) as add_cache_entry:
        for raw, cache_entry in scan.files():
            add_file(file_list_row(raw))
            add_cache_entry((raw.raw_path, cache_entry))
    with wh.capped_connection(folder, lake=True) as con:
        found = f"read_parquet({quote(str(lists.inventory))})"
        # Without a warehouse yet, the plain connection has no lake tables: both find nothing.
        state.check_collection_use(con, collection)
        stored_rejects = state.inventory_rejects(con, found, collection)
        inventory_paths = sorted({r.raw_path for r in scan.rejects} | {p for p, _, _ in stored_rejects})
        state.known_files(con, "known", collection, exclude=inventory_paths)
        counts = compare(con, found, "known", lists)
    counts["files"] = counts["new"] + counts["changed"] + counts["unchanged"]
    fresh_rejects = {(r.raw_path, r.error_kind, r.message) for r in scan.rejects}
    return RunPlan(lists, counts, scan.source_list(), scan.rejects,
                   fresh_rejects != stored_rejects, inventory_paths)


def compare(con: duckdb.DuckDBPyConnection, found: str, known: str, lists: PlanLists) -> dict[str, int]:
    """Compare the files found (`found`, a relation of FILE_COLUMNS) with the stored ones
    (`known`: raw_path, raw_sha256, pipeline_version) and write the `read`, `gone` and
    `unchanged` lists. Returns how many files are new, changed, unchanged and deleted."""
    con.execute(
        f"""CREATE TEMP TABLE planned AS
        SELECT raw_path, {', '.join('f.' + c for c in FILE_COLUMNS.names[1:])},
            CASE WHEN f.raw_path IS NULL THEN 'deleted' WHEN k.raw_path IS NULL THEN 'new'
                 WHEN k.raw_sha256 IS NOT DISTINCT FROM f.raw_sha256 AND k.pipeline_version = ?
                 THEN 'unchanged' ELSE 'changed' END AS decision
        FROM {found} f FULL JOIN {known} k USING (raw_path)""",
        [pipeline_version()],
    )
    counts = dict.fromkeys(("new", "changed", "unchanged", "deleted"), 0)
    counts.update(con.execute("SELECT decision, count(*) FROM planned GROUP BY ALL").fetchall())
    _write_list(con, "planned", "decision IN ('new', 'changed')", lists.read)
    con.execute(f"COPY (SELECT raw_path FROM planned WHERE decision <> 'unchanged' ORDER BY raw_path) "
                f"TO {quote(str(lists.gone))} (FORMAT parquet)")
    con.execute(f"COPY (SELECT * FROM planned WHERE decision = 'unchanged' ORDER BY raw_path) "
                f"TO {quote(str(lists.unchanged))} (FORMAT parquet)")
    return counts


def add_context(wh: Warehouse, run_plan: RunPlan, context_paths: list[str]) -> tuple[Path, int, int]:
    """Write the `process` list: the new and changed files and the unchanged files among
    `context_paths` (whose output a change of repeated lines alters); and the `replace` list.
    Returns (the process list, how many files it holds, how many of them are unchanged ones)."""
    lists = run_plan.lists
    unchanged = f"read_parquet({quote(str(lists.unchanged))})"
    with wh.capped_connection(lists.folder) as con:
        temp_list(con, "context", "raw_path", context_paths)
        con.execute(
            f"""CREATE TEMP TABLE to_process AS
            SELECT * EXCLUDE (seq) FROM read_parquet({quote(str(lists.read))})
            UNION ALL SELECT {', '.join(FILE_COLUMNS.names)} FROM {unchanged}
                WHERE raw_path IN (SELECT raw_path FROM context)"""
        )
        n_process = _write_list(con, "to_process", "true", lists.process)
        temp_list(con, "decided", "raw_path", run_plan.inventory_paths if run_plan.inventory_changed else [])
        con.execute(
            f"""COPY (SELECT raw_path FROM to_process
                      UNION SELECT raw_path FROM read_parquet({quote(str(lists.gone))})
                      UNION SELECT raw_path FROM decided ORDER BY raw_path)
            TO {quote(str(lists.replace))} (FORMAT parquet)"""
        )
    return lists.process, n_process, n_process - run_plan.counts["new"] - run_plan.counts["changed"]


def file_ranges(wh: Warehouse, file_list: Path, n_files: int, collection: str | None, shard_size: int = 0) -> list[FileRange]:
    """The list's files in shards of `shard_size` (0: from the number of files), each with the
    sources of its files (a task is sent only those sources' repeated lines)."""
    size = shard_size_for(n_files, shard_size)
    if not n_files:
        return []
    with wh.capped_connection(file_list.parent) as con:
        sources = dict(con.execute(
            f"SELECT seq // {size}, list(DISTINCT source_id ORDER BY source_id) FROM read_parquet({quote(str(file_list))}) "
            "GROUP BY ALL").fetchall())
    return [FileRange(file_list, start, min(start + size, n_files), collection, tuple(sources[start // size]))
            for start in range(0, n_files, size)]


def _write_list(con: duckdb.DuckDBPyConnection, table: str, where: str, out: Path) -> int:
    """Write `table`'s rows matching `where` as a file list (FILE_COLUMNS, then seq, in path order)."""
    con.execute(
        f"""COPY (SELECT {', '.join(FILE_COLUMNS.names)}, row_number() OVER (ORDER BY raw_path) - 1 AS seq
                  FROM {table} WHERE {where} ORDER BY raw_path)
        TO {quote(str(out))} (FORMAT parquet, ROW_GROUP_SIZE {BATCH_ROWS})"""
    )
    return con.execute(f"SELECT count(*) FROM read_parquet({quote(str(out))})").fetchone()[0]


def load_repeats(path: Path, source_ids: Iterable[str]) -> dict[str, frozenset[int]]:
    """The repeated lines of `source_ids` in the file `state.repeat_plan` wrote, per source."""
    wanted = sorted(set(source_ids))
    if not wanted:
        return {}
    table = pq.read_table(path, filters=[("source_id", "in", wanted)])
    hashes: dict[str, set[int]] = {}
    for source_id, line_hash in zip(table.column("source_id").to_pylist(), table.column("line_hash").to_pylist()):
        hashes.setdefault(source_id, set()).add(line_hash)
    return {source_id: frozenset(found) for source_id, found in hashes.items()}


def process_planned_shard(
    raw_dir: Path, files: FileRange, sources: dict[str, SourceInfo], repeats_file: Path, staging: Path, shard: int,
) -> ShardResult:
    """`process_shard` of a planned shard, with its own sources' repeats read from `repeats_file`."""
    return process_shard(raw_dir, files, sources, load_repeats(repeats_file, files.source_ids), staging, shard)

