"""Shards: a shard's raw files read, processed and written as Parquet under the run's staging.

Takes a shard's files (a list, or a `FileRange` of a planned file list); gives staging files per
table (`shard_file`) and a `ShardResult` of row counts. The rows themselves come from
`flows.stages.document`; this module only reads, batches, sorts and writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flows import schemas
from flows.faults import fault_point
from flows.stages.clean import line_hashes
from flows.stages.document import DOCUMENT_TABLES, DocumentRows, file_row, index_rows, process_file, reject_row
from flows.stages.formats import format_of, read_file
from flows.stages.records import DocMeta, RawFile, Reject, SourceInfo, sha256_hex, document_id
from flows.stages.rules import rules

@dataclass(frozen=True)
class ShardResult:
    """What one shard staged: row counts per table (files are at staging/<table>/<shard>)."""

    shard: int
    counts: dict[str, int]


def shard_file(staging: Path, table: str, shard: int) -> Path:
    return staging / table / f"shard-{shard:05d}.parquet"


def write_table(path: Path, table: pa.Table) -> None:
    """Write Parquet atomically (tmp + rename) so a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fault_point("staging")
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=64_000)
    tmp.replace(path)


def rows_to_table(name: str, rows: list[dict]) -> pa.Table:
    return sorted_table(name, schemas.table(name).to_arrow(rows))


def sorted_table(name: str, table: pa.Table) -> pa.Table:
    """`table` in its contract's sort order (a shard's rows are staged sorted)."""
    if not table.num_rows:
        return table
    return table.sort_by([(key, "ascending") for key in schemas.table(name).sort_by])


@lru_cache(maxsize=8)
def _resolved(raw_dir: Path) -> Path:
    """The raw folder's real path, found once per run rather than once per file."""
    return raw_dir.resolve()


READ_RETRY_SECONDS = (0.2, 1.0)  # a file briefly locked or being replaced gets two more tries


def read_raw(raw_dir: Path, raw: RawFile) -> bytes | Reject:
    """The file's bytes, or a reject if it is too large, stays unreadable or no longer has the
    planned hash."""
    limit = rules()["decode"]["max_file_bytes"]
    if raw.raw_bytes > limit:
        reason = f"{raw.raw_path}: {raw.raw_bytes} bytes is over the size limit of {limit} bytes (rules.toml)"
        return Reject(raw.raw_path, "too_large", reason, raw.raw_sha256, raw.raw_bytes)
    path = raw_dir / raw.path_in_raw
    if not path.resolve().is_relative_to(_resolved(raw_dir)):  # a link re-pointed since the plan
        return Reject(raw.raw_path, "outside_raw", f"{raw.raw_path}: now leads outside the raw folder; not read")
    for delay in (*READ_RETRY_SECONDS, None):
        try:
            data = path.read_bytes()
            break
        except OSError as exc:
            if delay is None:
                return Reject(raw.raw_path, "unreadable", f"{raw.raw_path}: cannot read: {exc.strerror or exc}")
            time.sleep(delay)
    if sha256_hex(data) != raw.raw_sha256:
        return Reject(raw.raw_path, "unreadable", f"{raw.raw_path}: changed while the run was reading it")
    return data


def fingerprint_shard(raw_dir: Path, files: Iterable[RawFile], staging: Path, shard: int) -> int:
    """Stage the line hashes of files about to be processed (for cross-document repeats)."""
    rows: list[dict] = []
    for raw in files:
        data = read_raw(raw_dir, raw)
        if isinstance(data, Reject):
            continue
        for extracted in read_file(raw.raw_path, data).documents:
            rows.extend(index_rows(document_id(raw.raw_path, extracted.raw_record), raw.meta.source_id,
                                   extracted.text, line_hashes(extracted.text)))
    write_table(shard_file(staging, "fingerprints", shard), rows_to_table("line_index", rows))
    return len(rows)


def process_shard(
    raw_dir: Path,
    files: Iterable[RawFile],
    sources: dict[str, SourceInfo],
    repeats: dict[str, Set[int]],
    staging: Path,
    shard: int,
) -> ShardResult:
    """Process a shard of files and stage its rows; unreadable files become rejects."""
    rows, arrow_parts = DocumentRows(), {name: [] for name in DOCUMENT_TABLES}
    for count, raw in enumerate(files, start=1):
        data = read_raw(raw_dir, raw)
        if isinstance(data, Reject):
            rows.rejects.append(reject_row(data, raw))
            rows.files.append(file_row(raw, format_of(raw.raw_path), 0, 1, {}))
        else:
            source_id = raw.meta.source_id
            rows.extend(process_file(raw, data, sources.get(source_id), repeats.get(source_id, frozenset())))
        if count % ARROW_EVERY_FILES == 0:
            _move_to_arrow(rows, arrow_parts)
            rows = DocumentRows()
    _move_to_arrow(rows, arrow_parts)
    counts = {}
    for name in DOCUMENT_TABLES:
        table = sorted_table(name, pa.concat_tables(arrow_parts.pop(name)))
        counts[name] = table.num_rows
        write_table(shard_file(staging, name, shard), table)
    return ShardResult(shard, counts)


# A shard's rows are held as Python dicts for at most this many files, then as Arrow tables,
# which take a fraction of the memory: a worker's peak then does not grow with the shard size.
# Sorting the concatenated parts gives the table that sorting the dicts of the shard gave.
ARROW_EVERY_FILES = 100


def _move_to_arrow(rows: DocumentRows, parts: dict[str, list[pa.Table]]) -> None:
    for name in DOCUMENT_TABLES:
        parts[name].append(schemas.table(name).to_arrow(getattr(rows, name)))


# --- shards of files ------------------------------------------------------------------------

# A file list (planning writes them): one row per raw file, in path order, numbered by `seq`.
FILE_COLUMNS = pa.schema([
    ("raw_path", pa.string()), ("raw_sha256", pa.string()), ("raw_bytes", pa.int64()),
    ("source_id", pa.string()), ("title", pa.string()), ("author", pa.string()),
    ("published", pa.string()), ("url", pa.string()),
])


def file_list_row(raw: RawFile) -> tuple:
    """A file's row of a file list (FILE_COLUMNS); `FileRange` reads it back."""
    meta = raw.meta
    return raw.raw_path, raw.raw_sha256, raw.raw_bytes, meta.source_id, meta.title, meta.author, meta.published, meta.url


@dataclass(frozen=True)
class FileRange:
    """Rows `start` to `stop` of a file list: a shard's files, read by the task that processes
    them (iterate it) rather than shipped from the flow. `source_ids`: the sources among them."""

    file_list: Path
    start: int
    stop: int
    collection: str | None = None
    source_ids: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[RawFile]:
        table = pq.read_table(self.file_list, columns=FILE_COLUMNS.names,
                              filters=[("seq", ">=", self.start), ("seq", "<", self.stop)])
        metas: dict[tuple, DocMeta] = {}  # files of one source and metadata share one
        for path, sha, size, *meta in zip(*(column.to_pylist() for column in table.columns)):
            yield RawFile(path, sha, size, metas.setdefault(tuple(meta), DocMeta(*meta)), self.collection)


# Automatic shard size: enough shards to keep every worker busy to the end (about 64), few
# enough that per-task overhead (a Prefect task run, a Parquet file per table) stays small.
# At least MIN_SHARD files: smaller shards make an incremental run slower, not faster.
AUTO_SHARDS, MIN_SHARD, MAX_SHARD = 64, 200, 1000


def shard_size_for(n_files: int, shard_size: int = 0) -> int:
    """`shard_size` if given (> 0), else a size that depends only on the number of files."""
    if shard_size > 0:
        return shard_size
    return max(MIN_SHARD, min(MAX_SHARD, -(-n_files // AUTO_SHARDS)))
