"""Plain records passed between stages. No I/O, no behaviour beyond small derived values."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import xxhash

from flows.stages.rules import reject_kinds


def stable_id(*parts: object) -> str:
    """Deterministic 16-hex-digit id of its parts (never Python's salted hash())."""
    return xxhash.xxh3_64_hexdigest("\x1f".join(str(p) for p in parts).encode("utf-8"))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SourceInfo:
    source_id: str
    name: str | None = None
    kind: str | None = None
    homepage: str | None = None
    notes: str | None = None


@dataclass(frozen=True, slots=True)  # up to one per file: slots keep 170k of them small
class DocMeta:
    """What the sidecar says about one file (all optional)."""

    source_id: str
    title: str | None = None
    author: str | None = None
    published: str | None = None  # ISO date
    url: str | None = None


@dataclass(frozen=True, slots=True)
class RawFile:
    """A discovered input file: identity and content hash, bytes read lazily by the caller."""

    raw_path: str  # relative to the raw folder, POSIX separators; '<collection>/' first in one
    raw_sha256: str
    raw_bytes: int
    meta: DocMeta
    collection: str | None = None

    @property
    def path_in_raw(self) -> str:
        """Where the file is, relative to the raw folder the run reads."""
        return self.raw_path.removeprefix(f"{self.collection}/") if self.collection else self.raw_path


def in_collection(rel: str, collection: str | None) -> str:
    """The raw_path stored for a file at `rel` in a raw folder written as `collection`."""
    return f"{collection}/{rel}" if collection else rel


def document_id(raw_path: str, raw_record: int | None = None) -> str:
    """Identity of what one file (one line or record of it) holds: one version of a document."""
    return stable_id("path", raw_path) if raw_record is None else stable_id("path", raw_path, raw_record)


@dataclass(frozen=True)
class Reject:
    """A file, or a line or record of one, that could not become a document, and why.
    `error_kind` is a name of the catalogue in reject_kinds.toml; any other is a bug."""

    raw_path: str
    error_kind: str
    message: str
    raw_sha256: str | None = None
    raw_bytes: int | None = None
    raw_record: int | None = None  # the line (JSON Lines) or record (WARC) it concerns

    def __post_init__(self) -> None:
        if self.error_kind not in reject_kinds():
            raise ValueError(f"unknown reject kind {self.error_kind!r} (see reject_kinds.toml)")


@dataclass(frozen=True)
class PageMeta:
    """What a format itself says about a document (HTML markup, JSON fields, WARC headers)."""

    title: str | None = None
    author: str | None = None
    published: str | None = None  # ISO date
    url: str | None = None
    site_name: str | None = None
    fetched: str | None = None  # ISO date-time, UTC


@dataclass(frozen=True)
class Extracted:
    """One document read out of a raw file: the text to clean and what the format told."""

    text: str
    encoding: str
    format: str  # text | html | jsonl | warc
    raw_record: int | None = None  # 1-based line or record number in multi-document files
    meta: PageMeta = PageMeta()
    comments_from_line: int | None = None  # lines from here on are reader comments (HTML)



@dataclass(frozen=True)
class RemovedLine:
    line_start: int  # 1-based, inclusive
    line_end: int
    text: str
    rule: str
    score: float | None = None  # the boilerplate classifier's P(content), for its removals


@dataclass(frozen=True)
class Edit:
    line_number: int
    rule: str  # repair.encoding | repair.glued_word
    before: str
    after: str


@dataclass(frozen=True)
class Block:
    """A kept run of text in the clean text, with where it came from."""

    index: int
    section: str  # title | heading | body | list_item | quote | caption | comment
    char_start: int
    char_end: int
    line_start: int
    line_end: int
    comment_author: str | None = None


@dataclass
class Cleaned:
    """Output of the clean stage for one document."""

    clean_text: str
    blocks: list[Block]
    removed: list[RemovedLine]
    edits: list[Edit] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    line_hashes: set[int] = field(default_factory=set)  # rows of the line_index table
    n_lines: int = 0
    repaired_chars: int = 0
    normalised_chars: int = 0


@dataclass(frozen=True)
class Span:
    """A sentence: offsets into the clean text and the block it lies in."""

    block_index: int
    char_start: int
    char_end: int


@dataclass(frozen=True)
class Lang:
    code: str | None
    prob: float | None
