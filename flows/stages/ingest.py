"""Ingest: find raw files, hash them, read sidecar metadata (decoding their bytes: `decode`).

Takes a raw folder; gives `RawFile` records (path, sha256, size, metadata), and a `Reject` with
a clear reason for every entry that cannot be read (a broken link, a special file, an
unreadable file or folder, a bad sidecar entry). Never raises for bad input. A `Scan` yields
the files one at a time in path order (a run writes them to disk as it goes, see `planning`);
`inventory` collects them.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from flows.stages.records import DocMeta, Reject, RawFile, SourceInfo, in_collection

SIDECAR_NAME = "_sources.toml"

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


def _walk(folder: str, prefix: str) -> Iterator[Entry]:
    """Entries under folder in order of their path (hidden names and the sidecar skipped), one
    folder listed at a time: the walk never holds the whole tree, whatever its size.

    A folder's entries are sorted by name, with '/' after a folder's: then a depth-first walk
    gives every path in plain string order ('a.txt' < 'a/b.txt' < 'a0'). os.scandir rather than
    pathlib: pathlib's parsing and its three stat calls per file made the inventory several
    times slower than one stat per file (the plan stage of python benchmarks/bench.py).
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


def discover(raw_dir: Path) -> Iterator[Entry]:
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


@dataclass
class Scan:
    """A raw folder's inventory as it is walked: `files()` yields each file found (in path
    order) with its hash-cache entry, and fills `sources` and `rejects` as it goes. Only the
    rejects and sources are held: a million files take no more memory than ten."""

    raw_dir: Path
    known_hashes: Mapping[str, str]
    collection: str | None
    sources: dict[str, SourceInfo] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)

    def files(self) -> Iterator[tuple[RawFile, str]]:
        """(file, "<size> <mtime_ns> <ctime_ns> <inode> <sha256>") of every readable file.
        A file whose stat key is the one in `known_hashes` is not read again."""
        self.sources, metas, self.rejects = read_sidecar(self.raw_dir)
        rejects, collection = self.rejects, self.collection
        root_name = self.raw_dir.resolve().name
        folder_metas: dict[str, DocMeta] = {}  # shared by the files of a source without sidecar entries
        for entry in discover(self.raw_dir):
            rel = entry.rel
            if not (rel.isascii() or _is_utf8(rel)):
                shown = os.fsencode(rel).decode("utf-8", errors="backslashreplace")
                rejects.append(Reject(shown, "bad_name", f"{shown}: the file name is not valid UTF-8 "
                                                         "(rename the file; it was not read)"))
                continue
            if entry.unlisted:
                rejects.append(Reject(rel, "unreadable", f"{rel}: cannot list this folder: {entry.unlisted}"))
                continue
            problem = None if entry.regular else not_an_input(entry.path, self.raw_dir)
            if problem:
                rejects.append(Reject(rel, problem[0], f"{rel}: {problem[1]}"))
                continue
            stored = in_collection(rel, collection)
            try:
                key = entry.stat_key()
                key_text = " ".join(map(str, key))
                cached = self.known_hashes.get(stored) or ""
                if cached.startswith(key_text + " "):
                    sha, size, cache_entry = cached[len(key_text) + 1:], key[0], cached
                else:
                    sha, size = hash_file(entry.path)
                    cache_entry = f"{key_text} {sha}"
            except OSError as exc:
                rejects.append(Reject(rel, "unreadable", f"{rel}: cannot read: {exc.strerror or exc}"))
                continue
            meta = metas.get(rel)
            if meta is None:
                source_id = _default_source_id(rel, root_name)
                meta = folder_metas.setdefault(source_id, DocMeta(source_id))
            if meta.source_id not in self.sources:
                self.sources[meta.source_id] = SourceInfo(meta.source_id, notes="derived from folder name")
            yield RawFile(stored, sha, size, meta, collection), cache_entry
        self.rejects = [replace(r, raw_path=in_collection(r.raw_path, collection)) for r in rejects]

    def source_list(self) -> list[SourceInfo]:
        return [self.sources[k] for k in sorted(self.sources)]


def inventory(
    raw_dir: Path, known_hashes: dict[str, str] | None = None, collection: str | None = None
) -> Inventory:
    """Discover and hash every file; attach sidecar metadata and source ids (the whole `Scan`,
    in memory).

    `known_hashes` ({raw_path: "<size> <mtime_ns> <ctime_ns> <inode> <sha256>"}, from the
    previous run) spares re-reading a file whose stat key is unchanged; it is updated in place
    with every file's entry.
    With a `collection`, every raw_path (of files and rejects) starts with '<collection>/'.
    """
    known_hashes = {} if known_hashes is None else known_hashes
    scan = Scan(raw_dir, known_hashes, collection)
    files = []
    for raw, cache_entry in scan.files():
        files.append(raw)
        known_hashes[raw.raw_path] = cache_entry
    return Inventory(files, scan.source_list(), scan.rejects)
