"""Pipeline: composes the stages per file, per document and per shard.

`process_file` is pure: a raw file's bytes + identity -> rows for documents, sentences, removed,
edits and line_index per document it holds, rejects for what could not be read, and its files
row. `process_shard` reads a shard's files and writes its rows as Parquet under the run's
staging folder; a shard's files are a list or a `FileRange` of a planned file list.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from urllib.parse import urldefrag

import courlan

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__, language, schemas
from .clean import clean, line_hashes
from .faults import fault_point
from .formats import format_of, read_file
from .records import Block, DocMeta, Extracted, RawFile, Reject, SourceInfo, sha256_hex, stable_id, version_id
from .rules import RULES_PATH, rules
from .segment import segment

DOCUMENT_TABLES = ("documents", "sentences", "removed", "edits", "line_index", "rejects", "files")
_WORD = re.compile(r"\S*[^\W_]\S*")
_STAGE_MODULES = ("clean.py", "repair.py", "segment.py", "language.py", "fastpaths.py",
                  "ingest.py", "decode.py", "formats.py", "pipeline.py", "records.py")


@cache
def pipeline_version() -> str:
    """Hash of the code and rules that decide the rows: a change reprocesses documents."""
    digest = hashlib.sha256(__version__.encode())
    here = Path(__file__).parent
    for name in _STAGE_MODULES:
        digest.update((here / name).read_bytes())
    digest.update(RULES_PATH.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class DocumentRows:
    documents: list[dict] = field(default_factory=list)
    sentences: list[dict] = field(default_factory=list)
    removed: list[dict] = field(default_factory=list)
    edits: list[dict] = field(default_factory=list)
    line_index: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)

    def extend(self, other: "DocumentRows") -> None:
        for name in DOCUMENT_TABLES:
            getattr(self, name).extend(getattr(other, name))


def reject_row(reject: Reject, raw: RawFile | None = None) -> dict:
    """A rejects row; with `raw`, the file's own hash and size (not those of, say, the
    decompressed bytes the reject was found in)."""
    return {
        "raw_path": reject.raw_path,
        "raw_record": reject.raw_record,
        "raw_sha256": raw.raw_sha256 if raw else reject.raw_sha256,
        "raw_bytes": raw.raw_bytes if raw else reject.raw_bytes,
        "error_kind": reject.error_kind,
        "message": reject.message,
        "pipeline_version": pipeline_version(),
    }


def file_row(raw: RawFile, fmt: str, n_documents: int, n_rejects: int, skipped: dict[str, int]) -> dict:
    return {
        "raw_path": raw.raw_path,
        "raw_sha256": raw.raw_sha256,
        "raw_bytes": raw.raw_bytes,
        "format": fmt,
        "n_documents": n_documents,
        "n_rejects": n_rejects,
        "n_skipped": sum(skipped.values()),
        "skipped": "; ".join(f"{what}: {count}" for what, count in sorted(skipped.items())) or None,
        "pipeline_version": pipeline_version(),
    }


def _split_list(value: str | None) -> list[str] | None:
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return items or None


def identity_url(url: str) -> str:
    """The form of a URL that decides document identity: courlan's normalisation (case,
    default port, tracking parameters, parameter order), without the #fragment."""
    try:
        normal = courlan.normalize_url(url.strip())
    except (ValueError, TypeError):
        normal = url.strip()
    return urldefrag(normal)[0]


def document_ids(raw: RawFile, extracted: Extracted, url: str | None) -> tuple[str, str]:
    """(doc_id, version_id): a URL identifies the document when known; the file (and line or
    record) identifies the version."""
    version = version_id(raw.raw_path, extracted.raw_record)
    return (stable_id("url", identity_url(url)) if url else version), version


def index_rows(version: str, source_id: str, text: str, hashes: set[int]) -> list[dict]:
    text_sha = sha256_hex(text.encode("utf-8", errors="surrogatepass"))
    return [
        {"version_id": version, "source_id": source_id, "text_sha256": text_sha, "line_hash": h}
        for h in sorted(hashes)
    ]


def process_file(
    raw: RawFile, data: bytes, source: SourceInfo | None = None, repeats: Set[int] = frozenset()
) -> DocumentRows:
    """One raw file -> its rows: a document (with sentences and removals) per document the file
    holds, a reject per part that could not be read, and the file's own row.

    `repeats` holds the line hashes that recur across the source's documents (site chrome).
    """
    report = read_file(raw.raw_path, data)
    rows = DocumentRows(rejects=[reject_row(r, raw) for r in report.rejects])
    for extracted in report.documents:
        rows.extend(process_document(raw, extracted, source, repeats))
    rows.files.append(file_row(raw, report.format, len(rows.documents), len(rows.rejects), report.skipped))
    return rows


def process_document(
    raw: RawFile, extracted: Extracted, source: SourceInfo | None = None, repeats: Set[int] = frozenset()
) -> DocumentRows:
    """One document read from a raw file -> its rows (documents, sentences, removed, edits,
    line_index)."""
    cleaned = clean(extracted.text, source.name if source else None, repeats, extracted.comments_from_line)
    # The sidecar describes a file: its title or URL only apply to a file that is one document.
    sidecar = raw.meta if extracted.raw_record is None else DocMeta(raw.meta.source_id)
    page, found = extracted.meta, cleaned.metadata
    url = sidecar.url or page.url
    doc_id, version = document_ids(raw, extracted, url)
    source_id = raw.meta.source_id
    rows = DocumentRows(line_index=index_rows(version, source_id, extracted.text, cleaned.line_hashes))
    spans = segment(cleaned.clean_text, cleaned.blocks)
    doc_lang, sentence_langs = language.assign(cleaned.clean_text, cleaned.blocks, spans)
    keys = {"doc_id": doc_id, "version_id": version, "source_id": source_id}
    for index, (span, lang) in enumerate(zip(spans, sentence_langs)):
        block = cleaned.blocks[span.block_index]
        sentence_text = cleaned.clean_text[span.char_start : span.char_end]
        rows.sentences.append({
            "sentence_id": stable_id(version, span.char_start, sentence_text),
            **keys,
            "section": block.section,
            "block_index": block.index,
            "sentence_index": index,
            "char_start": span.char_start,
            "char_end": span.char_end,
            "text": sentence_text,
            "n_words": len(_WORD.findall(sentence_text)),
            "lang": lang.code,
            "lang_prob": lang.prob,
            "comment_author": block.comment_author,
        })
    for removed in cleaned.removed:
        rows.removed.append({**keys, "line_start": removed.line_start, "line_end": removed.line_end,
                             "text": removed.text, "rule": removed.rule})
    for edit in cleaned.edits:
        rows.edits.append({**keys, "line_number": edit.line_number, "rule": edit.rule,
                           "before": edit.before, "after": edit.after})
    published = sidecar.published or page.published or found.get("published")
    rows.documents.append({
        **keys,
        "raw_path": raw.raw_path,
        "raw_record": extracted.raw_record,
        "raw_sha256": raw.raw_sha256,
        "raw_bytes": raw.raw_bytes,
        "encoding": extracted.encoding,
        "format": extracted.format,
        "title": sidecar.title or page.title or found.get("title"),
        "author": sidecar.author or page.author or found.get("author"),
        "published": date.fromisoformat(published) if published else None,
        "url": url,
        "site_name": page.site_name,
        "fetched": datetime.fromisoformat(page.fetched) if page.fetched else None,
        "issue": found.get("issue"),
        "categories": _split_list(found.get("categories")),
        "tags": _split_list(found.get("tags")),
        "lang": doc_lang.code,
        "lang_prob": doc_lang.prob,
        "clean_text": cleaned.clean_text,
        "clean_sha256": sha256_hex(cleaned.clean_text.encode("utf-8")),
        "duplicate_of": None,  # decided at publish, across the whole warehouse
        "is_latest": True,  # likewise
        "n_lines": cleaned.n_lines,
        "n_blocks": len(cleaned.blocks),
        "n_sentences": len(spans),
        "n_removed_lines": sum(r.line_end - r.line_start + 1 for r in cleaned.removed),
        "repaired_chars": cleaned.repaired_chars,
        "normalised_chars": cleaned.normalised_chars,
        "pipeline_version": pipeline_version(),
    })
    return rows


def split_text(text: str, clean_first: bool = True) -> list[dict]:
    """clean + segment + language on one text, for `corpus split`.

    With clean_first, offsets point into the cleaned text; without, every non-blank line of
    `text` is a body block and offsets point into `text` itself.
    """
    if clean_first:
        cleaned = clean(text)
        clean_text, blocks = cleaned.clean_text, cleaned.blocks
    else:
        clean_text, blocks, offset = text, [], 0
        for number, line in enumerate(text.splitlines(keepends=True), start=1):
            if line.strip():
                body = line.rstrip("\r\n")
                blocks.append(Block(len(blocks), "body", offset, offset + len(body), number, number))
            offset += len(line)
    spans = segment(clean_text, blocks)
    _, langs = language.assign(clean_text, blocks, spans)
    return [
        {"start": span.char_start, "end": span.char_end, "section": blocks[span.block_index].section,
         "text": clean_text[span.char_start : span.char_end], "lang": lang.code, "lang_prob": lang.prob}
        for span, lang in zip(spans, langs)
    ]


# --- shards ----------------------------------------------------------------------------------


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
            rows.extend(index_rows(version_id(raw.raw_path, extracted.raw_record), raw.meta.source_id,
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
# which take a fraction of the memory: a worker holding a whole 1,000-file shard (the largest,
# as at 1 GB) as dicts peaked at 348 MB RSS, against 270 MB for shards of 263 (as at 100 MB).
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
# At least 200 files: an incremental run at 1 GB (1,683 files changed) took 19.8-21.8 s in 9
# shards (fingerprinting and processing) and 21.1-22.1 s in 34 shards of 50.
AUTO_SHARDS, MIN_SHARD, MAX_SHARD = 64, 200, 1000


def shard_size_for(n_files: int, shard_size: int = 0) -> int:
    """`shard_size` if given (> 0), else a size that depends only on the number of files."""
    if shard_size > 0:
        return shard_size
    return max(MIN_SHARD, min(MAX_SHARD, -(-n_files // AUTO_SHARDS)))
