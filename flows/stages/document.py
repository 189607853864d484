"""One raw file or document in, its rows out: the stages composed per document.

`process_file` is pure: a raw file's bytes + identity -> rows for documents, sentences, removed,
edits and line_index per document it holds, rejects for what could not be read, and its files
row. `split_text` is the same clean + segment + language on one text, for `corpus split`.
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urldefrag

import courlan

from flows.stages import language
from flows.stages.clean import clean
from flows.stages.formats import read_file
from flows.stages.records import Block, DocMeta, Extracted, RawFile, Reject, SourceInfo, sha256_hex, stable_id, document_id
from flows.stages.segment import segment
from flows.stages.version import pipeline_version

DOCUMENT_TABLES = ("documents", "sentences", "removed", "edits", "line_index", "rejects", "files")
_WORD = re.compile(r"\S*[^\W_]\S*")


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
    """(page_id, doc_id): a URL identifies the document when known; the file (and line or
    record) identifies the version."""
    version = document_id(raw.raw_path, extracted.raw_record)
    return (stable_id("url", identity_url(url)) if url else version), version


def index_rows(version: str, source_id: str, text: str, hashes: set[int]) -> list[dict]:
    text_sha = sha256_hex(text.encode("utf-8", errors="surrogatepass"))
    return [
        {"doc_id": version, "source_id": source_id, "text_sha256": text_sha, "line_hash": h}
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
    page_id, version = document_ids(raw, extracted, url)
    source_id = raw.meta.source_id
    rows = DocumentRows(line_index=index_rows(version, source_id, extracted.text, cleaned.line_hashes))
    spans = segment(cleaned.clean_text, cleaned.blocks)
    doc_lang, sentence_langs = language.assign(cleaned.clean_text, cleaned.blocks, spans)
    keys = {"page_id": page_id, "doc_id": version, "source_id": source_id}
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
                             "text": removed.text, "rule": removed.rule, "score": removed.score})
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
