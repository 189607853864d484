"""Ingest: find raw files, hash them, read sidecar metadata, decode bytes to text.

Takes a raw folder; gives `RawFile` records (path, sha256, size, metadata) and, per file, either
decoded text with the encoding used or a `Reject` with a clear reason. Never raises for bad
input: every file ends as text or a reject.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import charset_normalizer

from .records import DocMeta, Reject, RawFile, SourceInfo, in_collection, sha256_hex
from .rules import rules

SIDECAR_NAME = "_sources.toml"

# File signatures of common binary formats saved under a text name.
_MAGIC = [
    (b"%PDF-", "a PDF document"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x7fELF", "an ELF executable"),
]
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


class RawDirError(ValueError):
    """The raw folder itself is unusable (missing, not a folder, no files)."""


@dataclass(frozen=True)
class Inventory:
    """Everything found in a raw folder: files to process, sources, and sidecar problems."""

    files: list[RawFile]
    sources: list[SourceInfo]
    rejects: list[Reject]


# --- discovery -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """A discovered entry: its path under the raw folder (posix) and the directory listing's
    entry, which knows without a system call whether it is a plain regular file (no link)."""

    rel: str
    listed: os.DirEntry
    unlisted: str | None = None  # why a folder could not be listed

    @property
    def path(self) -> Path:
        return Path(self.listed.path)

    @property
    def regular(self) -> bool:
        return self.listed.is_file(follow_symlinks=False)

    def stat_key(self) -> tuple[int, int, int, int]:
        """What changes whenever a file's bytes change: size, mtime, ctime (which no tool can
        set back) and inode (a file replaced by another)."""
        st = self.listed.stat(follow_symlinks=False) if self.regular else self.path.stat()
        return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def check_raw_dir(raw_dir: Path) -> None:
    """Raise RawDirError unless raw_dir is a folder holding at least one input entry."""
    if not raw_dir.exists():
        raise RawDirError(f"raw folder {raw_dir} does not exist")
    if not raw_dir.is_dir():
        raise RawDirError(f"raw folder {raw_dir} is not a folder")
    if next(_walk(str(raw_dir), ""), None) is None:
        raise RawDirError(f"raw folder {raw_dir} contains no files")


def _walk(folder: str, prefix: str):
    """Entries under folder in order of their path (hidden names and the sidecar skipped), one
    folder listed at a time: the walk never holds the whole tree, whatever its size.

    A folder's entries are sorted by name, with '/' after a folder's: then a depth-first walk
    gives every path in plain string order ('a.txt' < 'a/b.txt' < 'a0'). os.scandir rather than
    pathlib: at 170k files, pathlib's parsing and its three stat calls per file took 11 s of a
    45 s incremental run.
    """
    with os.scandir(folder) as listing:
        entries = [e for e in listing if not (e.name.startswith(".") or e.name == SIDECAR_NAME)]
    folders = {e.name for e in entries if e.is_dir(follow_symlinks=False)}
    for entry in sorted(entries, key=lambda e: e.name + "/" if e.name in folders else e.name):
        rel = prefix + entry.name
        if entry.name in folders:
            try:
                yield from _walk(entry.path, rel + "/")
            except OSError as exc:  # an unreadable folder is reported, not skipped
                yield Entry(rel, entry, exc.strerror or str(exc))
        else:  # files, links (to files or folders, never descended into) and special files
            yield Entry(rel, entry)


def discover(raw_dir: Path):
    """Entries under raw_dir that are inputs or must be accounted for, in order of their path:
    files, symbolic links (to files or folders) and special files; hidden names and the
    sidecar are skipped. Links to folders are listed, never descended into."""
    check_raw_dir(raw_dir)
    return _walk(str(raw_dir), "")


def not_an_input(path: Path, raw_dir: Path) -> tuple[str, str] | None:
    """(kind, reason) when a discovered entry must not be read: a link leading outside the raw
    folder, a broken link, a link to a folder, a special file (a FIFO would block a reader)."""
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return "broken_link", "is a symbolic link to nothing (broken or a loop)"
        if not target.is_relative_to(raw_dir.resolve()):
            return "outside_raw", "is a symbolic link to a place outside the raw folder; not followed"
        if target.is_dir():
            return "not_a_file", "is a symbolic link to a folder; folders are not followed through links"
    if not path.is_file():
        return "not_a_file", "is not a regular file (a pipe, socket or device); not read"
    return None


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 and size, streamed: memory stays flat whatever the file's size."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# --- sidecar metadata ------------------------------------------------------------------------


def _default_source_id(rel_path: str, root_name: str) -> str:
    """Files without sidecar metadata take their folder's name as source (raw/<source>/...);
    files at the top take the raw folder's own name."""
    return rel_path.split("/", 1)[0] if "/" in rel_path else root_name


def read_sidecar(raw_dir: Path) -> tuple[dict[str, SourceInfo], dict[str, DocMeta], list[Reject]]:
    """Parse raw_dir/_sources.toml. A malformed sidecar is a reject, never a crash."""
    path = raw_dir / SIDECAR_NAME
    if not path.exists():
        return {}, {}, []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        return {}, {}, [Reject(SIDECAR_NAME, "metadata", f"{SIDECAR_NAME} is not valid TOML: {exc}")]
    sources: dict[str, SourceInfo] = {}
    metas: dict[str, DocMeta] = {}
    rejects: list[Reject] = []
    for source_id, info in (data.get("sources") or {}).items():
        if not isinstance(info, dict):
            rejects.append(Reject(SIDECAR_NAME, "metadata", f"source {source_id!r} is not a table"))
            continue
        sources[source_id] = SourceInfo(
            source_id, info.get("name"), info.get("kind"), info.get("homepage"), info.get("notes")
        )
    root = raw_dir.resolve()
    for rel, info in (data.get("files") or {}).items():
        target = (raw_dir / rel).resolve()
        if not target.is_relative_to(root) or rel.startswith("/"):
            rejects.append(
                Reject(SIDECAR_NAME, "metadata", f"entry {rel!r} points outside the raw folder")
            )
            continue
        source_id = info.get("source")
        if source_id not in sources:
            rejects.append(
                Reject(SIDECAR_NAME, "metadata", f"entry {rel!r} names unknown source {source_id!r}")
            )
            continue
        metas[PurePosixPath(rel).as_posix()] = DocMeta(
            source_id, info.get("title"), info.get("author"), info.get("published"), info.get("url")
        )
    return sources, metas, rejects


def _is_utf8(name: str) -> bool:
    """False for names Python could only decode with escapes (bytes that are not UTF-8)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def inventory(
    raw_dir: Path, known_hashes: dict[str, str] | None = None, collection: str | None = None
) -> Inventory:
    """Discover and hash every file; attach sidecar metadata and source ids.

    `known_hashes` ({raw_path: "<size> <mtime_ns> <ctime_ns> <inode> <sha256>"}, from the
    previous run) spares re-reading a file whose stat key is unchanged; it is updated in place
    with what this call hashed.
    With a `collection`, every raw_path (of files and rejects) starts with '<collection>/'.
    """
    known_hashes = {} if known_hashes is None else known_hashes
    sources, metas, rejects = read_sidecar(raw_dir)
    files = []
    root_name = raw_dir.resolve().name
    folder_metas: dict[str, DocMeta] = {}  # shared by the files of a source without sidecar entries
    for entry in discover(raw_dir):
        rel = entry.rel
        if not (rel.isascii() or _is_utf8(rel)):
            shown = os.fsencode(rel).decode("utf-8", errors="backslashreplace")
            rejects.append(Reject(shown, "bad_name", f"{shown}: the file name is not valid UTF-8 "
                                                     "(rename the file; it was not read)"))
            continue
        if entry.unlisted:
            rejects.append(Reject(rel, "unreadable", f"{rel}: cannot list this folder: {entry.unlisted}"))
            continue
        problem = None if entry.regular else not_an_input(entry.path, raw_dir)
        if problem:
            rejects.append(Reject(rel, problem[0], f"{rel}: {problem[1]}"))
            continue
        stored = in_collection(rel, collection)
        try:
            key = entry.stat_key()
            key_text = " ".join(map(str, key))
            cached = known_hashes.get(stored, "")
            if cached.startswith(key_text + " "):
                sha, size = cached[len(key_text) + 1:], key[0]
            else:
                sha, size = hash_file(entry.path)
                known_hashes[stored] = f"{key_text} {sha}"
        except OSError as exc:
            rejects.append(Reject(rel, "unreadable", f"{rel}: cannot read: {exc.strerror or exc}"))
            continue
        meta = metas.get(rel)
        if meta is None:
            source_id = _default_source_id(rel, root_name)
            meta = folder_metas.setdefault(source_id, DocMeta(source_id))
        if meta.source_id not in sources:
            sources[meta.source_id] = SourceInfo(meta.source_id, notes="derived from folder name")
        files.append(RawFile(stored, sha, size, meta, collection))
    rejects = [replace(r, raw_path=in_collection(r.raw_path, collection)) for r in rejects]
    return Inventory(files, [sources[k] for k in sorted(sources)], rejects)


# --- decoding --------------------------------------------------------------------------------


def _sniff_binary(data: bytes) -> str | None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return what
    return None


def _plausible_western(text: str, max_share: float) -> bool:
    """True when non-ASCII letters are a small minority: a Western text in a legacy code page.

    A Cyrillic or Greek text decoded as cp1252 is mostly accented Latin letters; a French,
    German or English one has a few per hundred letters.
    """
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    odd = sum(1 for c in letters if ord(c) > 127)
    if odd / len(letters) > max_share:
        return False
    return all(unicodedata.category(c)[0] != "C" for c in text if ord(c) > 127)


def decode(data: bytes, raw_path: str, check_lines: bool = True) -> tuple[str, str] | Reject:
    """Bytes -> (text, encoding), or a Reject naming the file and the reason.

    `check_lines` rejects text with an overlong line (not prose); markup such as HTML is
    checked after extraction instead."""
    limits = rules()["decode"]
    sha, size = sha256_hex(data), len(data)

    def reject(kind: str, why: str) -> Reject:
        return Reject(raw_path, kind, f"{raw_path}: {why}", sha, size)

    if not data:
        return reject("empty", "file is empty (0 bytes)")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError as exc:
                return reject("undecodable", f"has a {encoding} byte-order mark but {exc.reason}")
            break
    else:
        what = _sniff_binary(data)
        if what:
            return reject("binary", f"is {what}, not text")
        if b"\x00" in data:
            decoded = _first_clean_decode(data, _wide_codecs(data))
            if decoded is None:
                return reject("binary", "contains NUL bytes: binary data, not text")
            text, encoding = decoded
        elif b"\x1b$" in data or b"\x1b(" in data:  # ISO-2022: 7-bit, yet not ASCII text
            decoded = _first_clean_decode(data, _ISO2022_CODECS)
            if decoded is None:
                return reject("undecodable", "has ISO-2022 escapes but no ISO-2022 codec reads it")
            text, encoding = decoded
        else:
            try:
                text, encoding = data.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                mostly = _decode_mostly_utf8(data, limits["max_invalid_utf8_share"])
                text, encoding = mostly or _decode_legacy(data, limits)
                if text is None:
                    return reject("undecodable", f"is not UTF-8 and no character set fits ({encoding})")
    if not text.strip():
        return reject("empty", "contains only whitespace")
    too_long = overlong_line(text) if check_lines else None
    if too_long:
        return reject("line_too_long", too_long)
    return text, encoding


def overlong_line(text: str) -> str | None:
    """Why a text is not prose when it has a line over the limit; None when it has none."""
    limit = rules()["decode"]["max_line_chars"]
    if len(text) > limit:
        longest = max(map(len, text.splitlines()))
        if longest > limit:
            return f"has a line of {longest} characters, over the limit of {limit} (rules.toml): not prose"
    return None


# A well-formed multi-byte UTF-8 character (what a legacy code page almost never produces).
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_UTF8_SURROGATE = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")  # CESU-8 / WTF-8: never valid UTF-8
_REPLACEMENT = "\ufffd".encode("utf-8")
# An invalid byte, escaped by Python as U+DC80..U+DCFF, read as cp1252 where cp1252 has it.
_ESCAPED_BYTE_AS_CP1252 = {
    0xDC00 + byte: bytes([byte]).decode("cp1252", errors="replace") for byte in range(0x80, 0x100)
}


def _decode_mostly_utf8(data: bytes, max_invalid_share: float) -> tuple[str, str] | None:
    """UTF-8 text with a few invalid bytes: a line pasted from a cp1252 source, a broken
    character. It has real multi-byte UTF-8 characters, and at most `max_invalid_share` of its
    bytes are invalid; each invalid byte is read as cp1252 (U+FFFD where cp1252 has nothing),
    encoded surrogates become U+FFFD. Encoding label: "utf-8+cp1252"."""
    if not _UTF8_MULTIBYTE.search(data):
        return None
    data = _UTF8_SURROGATE.sub(_REPLACEMENT, data)
    text = data.decode("utf-8", errors="surrogateescape")
    invalid = sum(1 for c in text if "\udc80" <= c <= "\udcff")
    if invalid > max_invalid_share * len(data):
        return None
    return text.translate(_ESCAPED_BYTE_AS_CP1252), "utf-8+cp1252"


def _wide_codecs(data: bytes) -> tuple[str, ...]:
    """UTF-32/16 codecs the NUL bytes make plausible, without a byte-order mark: text in
    those encodings has NULs in a regular pattern (a NUL high byte for every Latin letter),
    ASCII sprinkled with NULs does not, and is binary."""
    nul_at = [data[offset::4].count(0) / max(1, len(data[offset::4])) for offset in range(4)]
    even, odd = (nul_at[0] + nul_at[2]) / 2, (nul_at[1] + nul_at[3]) / 2
    found = []
    if min(nul_at[2], nul_at[3]) > 0.9:
        found.append("utf-32-le")
    if min(nul_at[0], nul_at[1]) > 0.9:
        found.append("utf-32-be")
    if odd > 0.1 and even < 0.01:  # NUL high bytes of ASCII letters, spaces, digits
        found.append("utf-16-le")
    if even > 0.1 and odd < 0.01:
        found.append("utf-16-be")
    return tuple(found)

_ISO2022_CODECS = ("iso2022_jp_2", "iso2022_kr")


def _first_clean_decode(data: bytes, codecs_to_try: tuple[str, ...]) -> tuple[str, str] | None:
    """The first codec that decodes strictly to text with hardly any control characters."""
    for codec in codecs_to_try:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for c in text if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn")
                       and c not in "\n\r\t")
        if text and controls / len(text) < 0.01:
            return text, codec
    return None


def _has_controls(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" and c not in "\n\r\t\f" for c in text)


def _decode_legacy(data: bytes, limits: dict) -> tuple[str | None, str]:
    """A non-UTF-8 text: (text, encoding), or (None, why not).

    A guess that other, equally plausible code pages would read differently is not a decode
    but a coin toss: such files are rejected as ambiguous rather than stored with wrong letters.
    """
    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        return None, "charset detection found no candidate"
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    if (
        western is not None
        and any(m.encoding == "cp1252" for m in matches)
        and _plausible_western(western, limits["max_non_ascii_letter_share"])
    ):
        return western, "cp1252"
    best = matches[0]
    if best.chaos > limits["max_chaos"]:
        return None, f"best guess {best.encoding} reads as noise (chaos {best.chaos:.2f})"
    text = str(best)
    rivals = [
        m.encoding for m in matches[1:]
        if m.chaos <= best.chaos + limits["rival_chaos_margin"]
        and m.coherence >= best.coherence - limits["rival_coherence_margin"]
        and str(m) != text
        and not _has_controls(str(m))  # a reading with C1 controls is no real rival
    ]
    if rivals:
        return None, f"ambiguous: reads as {best.encoding} or, differently, as {', '.join(rivals[:3])}"
    return text, best.encoding
