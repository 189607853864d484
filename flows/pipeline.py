"""Pipeline: composes the stages per document and per shard, and plans a run.

`process_document` is pure: raw bytes + identity -> rows for documents, sentences and removed,
or a reject. `process_shard` reads a shard's files and writes its rows as Parquet under the
run's staging folder. `plan_run` compares the raw folder with the warehouse's file state.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__, language, schemas
from .clean import clean, line_hashes
from .faults import fault_point
from .ingest import decode
from .records import Block, RawFile, Reject, SourceInfo, sha256_hex, stable_id
from .rules import RULES_PATH, rules
from .segment import segment

DOCUMENT_TABLES = ("documents", "sentences", "removed", "edits", "line_index", "rejects")
_WORD = re.compile(r"\S*[^\W_]\S*")
_STAGE_MODULES = ("clean.py", "repair.py", "segment.py", "language.py", "langdetect_fast.py", "fastpaths.py",
                  "ingest.py", "pipeline.py", "records.py")


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

    def extend(self, other: "DocumentRows") -> None:
        for name in DOCUMENT_TABLES:
            getattr(self, name).extend(getattr(other, name))


def reject_row(reject: Reject) -> dict:
    return {
        "raw_path": reject.raw_path,
        "raw_sha256": reject.raw_sha256,
        "raw_bytes": reject.raw_bytes,
        "error_kind": reject.error_kind,
        "message": reject.message,
        "pipeline_version": pipeline_version(),
    }


def _split_list(value: str | None) -> list[str] | None:
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return items or None


def index_rows(raw: RawFile, hashes: set[int]) -> list[dict]:
    return [
        {"doc_id": raw.doc_id, "source_id": raw.meta.source_id, "raw_sha256": raw.raw_sha256,
         "line_hash": h}
        for h in sorted(hashes)
    ]


def process_document(
    raw: RawFile, data: bytes, source: SourceInfo | None = None, repeats: Set[int] = frozenset()
) -> DocumentRows:
    """One raw file -> its rows (a document with sentences and removals, or one reject).

    `repeats` holds the line hashes that recur across the source's documents (site chrome).
    """
    decoded = decode(data, raw.raw_path)
    if isinstance(decoded, Reject):
        return DocumentRows(rejects=[reject_row(decoded)])
    text, encoding = decoded
    cleaned = clean(text, source.name if source else None, repeats)
    doc_id, source_id = raw.doc_id, raw.meta.source_id
    rows = DocumentRows(line_index=index_rows(raw, cleaned.line_hashes))
    spans = segment(cleaned.clean_text, cleaned.blocks)
    doc_lang, sentence_langs = language.assign(cleaned.clean_text, cleaned.blocks, spans)
    for index, (span, lang) in enumerate(zip(spans, sentence_langs)):
        block = cleaned.blocks[span.block_index]
        sentence_text = cleaned.clean_text[span.char_start : span.char_end]
        rows.sentences.append({
            "sentence_id": stable_id(doc_id, span.char_start, sentence_text),
            "doc_id": doc_id,
            "source_id": source_id,
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
        rows.removed.append({
            "doc_id": doc_id,
            "source_id": source_id,
            "line_start": removed.line_start,
            "line_end": removed.line_end,
            "text": removed.text,
            "rule": removed.rule,
        })
    for edit in cleaned.edits:
        rows.edits.append({
            "doc_id": doc_id,
            "source_id": source_id,
            "line_number": edit.line_number,
            "rule": edit.rule,
            "before": edit.before,
            "after": edit.after,
        })
    meta = cleaned.metadata
    published = raw.meta.published or meta.get("published")
    rows.documents.append({
        "doc_id": doc_id,
        "source_id": source_id,
        "raw_path": raw.raw_path,
        "raw_sha256": raw.raw_sha256,
        "raw_bytes": raw.raw_bytes,
        "encoding": encoding,
        "format": "text",
        "title": raw.meta.title or meta.get("title"),
        "author": raw.meta.author or meta.get("author"),
        "published": date.fromisoformat(published) if published else None,
        "url": raw.meta.url,
        "issue": meta.get("issue"),
        "categories": _split_list(meta.get("categories")),
        "tags": _split_list(meta.get("tags")),
        "lang": doc_lang.code,
        "lang_prob": doc_lang.prob,
        "clean_text": cleaned.clean_text,
        "clean_sha256": sha256_hex(cleaned.clean_text.encode("utf-8")),
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
    contract = schemas.table(name)
    table = contract.to_arrow(rows)
    if table.num_rows:
        table = table.sort_by([(key, "ascending") for key in contract.sort_by])
    return table


READ_RETRY_SECONDS = (0.2, 1.0)  # a file briefly locked or being replaced gets two more tries


def read_raw(raw_dir: Path, raw: RawFile) -> bytes | Reject:
    """The file's bytes, or a reject if it is too large, stays unreadable or no longer has the
    planned hash."""
    limit = rules()["decode"]["max_file_bytes"]
    if raw.raw_bytes > limit:
        reason = f"{raw.raw_path}: {raw.raw_bytes} bytes is over the size limit of {limit} bytes (rules.toml)"
        return Reject(raw.raw_path, "too_large", reason, raw.raw_sha256, raw.raw_bytes)
    path = raw_dir / raw.raw_path
    if not path.resolve().is_relative_to(raw_dir.resolve()):  # a link re-pointed since the plan
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


def fingerprint_shard(raw_dir: Path, files: list[RawFile], staging: Path, shard: int) -> int:
    """Stage the line hashes of files about to be processed (for cross-document repeats)."""
    rows: list[dict] = []
    for raw in files:
        data = read_raw(raw_dir, raw)
        decoded = decode(data, raw.raw_path) if isinstance(data, bytes) else data
        if not isinstance(decoded, Reject):
            rows.extend(index_rows(raw, line_hashes(decoded[0])))
    write_table(shard_file(staging, "fingerprints", shard), rows_to_table("line_index", rows))
    return len(rows)


def process_shard(
    raw_dir: Path,
    files: list[RawFile],
    sources: dict[str, SourceInfo],
    repeats: dict[str, Set[int]],
    staging: Path,
    shard: int,
) -> ShardResult:
    """Process a shard of files and stage its rows; unreadable files become rejects."""
    rows = DocumentRows()
    for raw in files:
        data = read_raw(raw_dir, raw)
        if isinstance(data, Reject):
            rows.rejects.append(reject_row(data))
            continue
        source_id = raw.meta.source_id
        rows.extend(process_document(raw, data, sources.get(source_id), repeats.get(source_id, frozenset())))
    counts = {}
    for name in DOCUMENT_TABLES:
        table = rows_to_table(name, getattr(rows, name))
        counts[name] = table.num_rows
        write_table(shard_file(staging, name, shard), table)
    return ShardResult(shard, counts)


# --- planning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Which files a run processes, and which raw paths it deletes from the warehouse."""

    new: list[RawFile]
    changed: list[RawFile]
    unchanged: list[RawFile]
    deleted: list[str]

    @property
    def to_process(self) -> list[RawFile]:
        return sorted(self.new + self.changed, key=lambda f: f.raw_path)


def plan_run(files: list[RawFile], known: dict[str, tuple[str | None, str]]) -> Plan:
    """Compare discovered files with the warehouse's {raw_path: (raw_sha256, pipeline_version)}."""
    new, changed, unchanged = [], [], []
    version = pipeline_version()
    for raw in files:
        state = known.get(raw.raw_path)
        if state is None:
            new.append(raw)
        elif state != (raw.raw_sha256, version):
            changed.append(raw)
        else:
            unchanged.append(raw)
    present = {raw.raw_path for raw in files}
    deleted = sorted(path for path in known if path not in present)
    return Plan(new, changed, unchanged, deleted)


# Automatic shard size: enough shards to keep every worker busy to the end (about 64), few
# enough that per-task overhead (a Prefect task run, a Parquet file per table) stays small.
AUTO_SHARDS, MIN_SHARD, MAX_SHARD = 64, 50, 1000


def shard_size_for(n_files: int, shard_size: int = 0) -> int:
    """`shard_size` if given (> 0), else a size that depends only on the number of files."""
    if shard_size > 0:
        return shard_size
    return max(MIN_SHARD, min(MAX_SHARD, -(-n_files // AUTO_SHARDS)))


def shards(files: list[RawFile], shard_size: int = 0) -> list[list[RawFile]]:
    size = shard_size_for(len(files), shard_size)
    return [files[i : i + size] for i in range(0, len(files), size)]
