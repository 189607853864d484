"""Checking and fetching releases: `verify` a release folder or URL, `download` one safely.

Takes a release's location (a folder, or an http(s) URL of one); gives the problems found, or
a verified copy under DEST. A release's own files say what it holds, and nothing they say is
trusted until checked: manifest.json and SHA256SUMS are read once each and must agree; every
path must be a plain relative path inside the release; every file must have its declared
size and checksum; table files must hold the rows the manifest counts. A download writes
only inside a temporary folder under DEST and renames it into place after verification;
every failure is one line naming the URL and the reason.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from flows.release.folder import ReleaseError, parse_version

# manifest.json and SHA256SUMS of a real release are a few KB; anything far larger is not one.
LIST_BYTES = 16 * 2**20
CHUNK_BYTES = 2**20
# Seconds a whole download (or a verification over HTTP) may take, and one read may wait.
DEADLINE_SECONDS = 3600.0
READ_TIMEOUT_SECONDS = 60.0
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SUMS_LINE = re.compile(r"([0-9a-f]{64})  (.+)")


class FetchError(ReleaseError):
    """A release that cannot be read, or one whose files are not what they say."""


def is_url(location: str) -> bool:
    return urllib.parse.urlparse(location).scheme in ("http", "https")


def safe_path(name: object, where: str) -> str:
    """`name` if it is a plain relative POSIX path inside the release, else FetchError."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name or name != name.strip():
        raise FetchError(f"{where}: {name!r} is not a file path inside the release")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or any(p in (".", "..") for p in parts) or "/".join(parts) != name:
        raise FetchError(f"{where}: {name!r} is not a file path inside the release")
    return name


class Reader:
    """Reads a release's files from a folder or a URL, each at most a given size, all before
    one deadline."""

    def __init__(self, location: str, deadline_seconds: float = DEADLINE_SECONDS) -> None:
        self.location = location.rstrip("/") if is_url(location) else location
        self.deadline = time.monotonic() + deadline_seconds
        self.seconds = deadline_seconds

    def where(self, name: str) -> str:
        return f"{self.location}/{urllib.parse.quote(name)}" if is_url(self.location) else str(Path(self.location) / name)

    def chunks(self, name: str, max_bytes: int):
        """The bytes of release file `name` in chunks; FetchError if it is missing, larger than
        `max_bytes`, cut short or late."""
        where = self.where(name)
        try:
            if is_url(self.location):
                yield from self._url_chunks(where, max_bytes)
            else:
                yield from self._file_chunks(Path(self.location), name, where, max_bytes)
        except FetchError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError is an OSError
            reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
            # What a server sends is shown on one line, and not at any length.
            raise FetchError(f"{where}: cannot read it ({' '.join(str(reason).split())[:200]})") from exc

    def _remaining(self, where: str) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FetchError(f"{where}: not finished within the {self.seconds:g} s allowed")
        return left

    def _url_chunks(self, url: str, max_bytes: int):
        timeout = min(READ_TIMEOUT_SECONDS, self._remaining(url))
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http/https only)
            received = 0
            while chunk := response.read1(CHUNK_BYTES):
                received += len(chunk)
                if received > max_bytes:
                    raise FetchError(f"{url}: sends more than the {max_bytes} bytes expected")
                self._remaining(url)
                yield chunk

    def _file_chunks(self, folder: Path, name: str, where: str, max_bytes: int):
        path = folder / name
        if path.is_symlink() or not path.resolve().is_relative_to(folder.resolve()) or not path.is_file():
            raise FetchError(f"{where}: not a regular file inside the release")
        with path.open("rb") as handle:
            received = 0
            while chunk := handle.read(CHUNK_BYTES):
                received += len(chunk)
                if received > max_bytes:
                    raise FetchError(f"{where}: larger than the {max_bytes} bytes expected")
                yield chunk

    def read(self, name: str, max_bytes: int = LIST_BYTES) -> bytes:
        return b"".join(self.chunks(name, max_bytes))


def parse_lists(manifest_bytes: bytes, sums_bytes: bytes, where: str) -> tuple[dict, dict[str, str]]:
    """(manifest, {path: sha256} of SHA256SUMS) once both are well formed and agree."""
    try:
        manifest = json.loads(manifest_bytes)
        sums_text = sums_bytes.decode("utf-8")
    except ValueError as exc:
        raise FetchError(f"{where}: manifest.json or SHA256SUMS is not readable ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list) or not manifest["files"]:
        raise FetchError(f"{where}: manifest.json is not a release manifest (an object with a non-empty 'files' list)")
    if not isinstance(manifest.get("version"), str):
        raise FetchError(f"{where}: manifest.json has no version")
    parse_version(manifest["version"])
    counts = manifest.get("row_counts", {})
    if not isinstance(counts, dict) or not all(isinstance(n, int) and n >= 0 for n in counts.values()):
        raise FetchError(f"{where}: manifest.json's row_counts are not counts")
    files: dict[str, dict] = {}
    for entry in manifest["files"]:
        if not isinstance(entry, dict):
            raise FetchError(f"{where}: manifest.json lists {entry!r}, not a file entry")
        path = safe_path(entry.get("path"), f"{where}: manifest.json")
        size, digest = entry.get("bytes"), entry.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(digest, str) \
                or not _SHA256.fullmatch(digest) or path in files or path in ("manifest.json", "SHA256SUMS"):
            raise FetchError(f"{where}: manifest.json's entry for {path!r} is malformed or repeated")
        files[path] = entry
    sums: dict[str, str] = {}
    for line in sums_text.splitlines():
        match = _SUMS_LINE.fullmatch(line)
        if not match:
            raise FetchError(f"{where}: SHA256SUMS has a malformed line {line[:80]!r}")
        path = safe_path(match.group(2), f"{where}: SHA256SUMS")
        if path in sums:
            raise FetchError(f"{where}: SHA256SUMS lists {path!r} twice")
        sums[path] = match.group(1)
    if set(sums) != set(files) | {"manifest.json"}:
        differ = sorted(set(sums) ^ (set(files) | {"manifest.json"}))
        raise FetchError(f"{where}: SHA256SUMS and manifest.json list different files: {', '.join(differ)}")
    for path, entry in files.items():
        if sums[path] != entry["sha256"]:
            raise FetchError(f"{where}: SHA256SUMS and manifest.json disagree on {path}")
    if sums["manifest.json"] != hashlib.sha256(manifest_bytes).hexdigest():
        raise FetchError(f"{where}: manifest.json does not match its checksum in SHA256SUMS")
    return manifest, sums


def _table_rows(data: bytes | Path) -> int:
    source = pa.BufferReader(data) if isinstance(data, bytes) else data
    return pq.read_metadata(source).num_rows


def _check_files(reader: Reader, manifest: dict, write_to: Path | None) -> list[str]:
    """Problems with the listed files (each read once, at most its declared size); with
    `write_to`, each file is also written there as it is read."""
    problems = []
    table_rows: dict[str, int] = {}
    for entry in manifest["files"]:
        path, size = entry["path"], entry["bytes"]
        digest, received = hashlib.sha256(), 0
        out = None
        if write_to is not None:
            (write_to / path).parent.mkdir(parents=True, exist_ok=True)
            out = (write_to / path).open("wb")
        keep = bytearray() if path.endswith(".parquet") and write_to is None and is_url(reader.location) else None
        try:
            for chunk in reader.chunks(path, size):
                digest.update(chunk)
                received += len(chunk)
                if out:
                    out.write(chunk)
                if keep is not None:
                    keep += chunk
        except FetchError as exc:
            if write_to is not None:
                raise
            problems.append(str(exc))
            continue
        finally:
            if out:
                out.close()
        if received != size:
            problems.append(f"{reader.where(path)}: {received} bytes, not the {size} declared")
            continue
        if digest.hexdigest() != entry["sha256"]:
            problems.append(f"{path}: checksum mismatch (the file was changed or damaged)")
            continue
        parts = PurePosixPath(path).parts
        if len(parts) == 3 and parts[0] == "data" and parts[2] == f"{parts[1]}.parquet":
            source = write_to / path if write_to else bytes(keep) if keep is not None else Path(reader.location) / path
            try:
                table_rows[parts[1]] = _table_rows(source)
            except (OSError, pa.ArrowException) as exc:
                problems.append(f"{path}: not a readable Parquet file ({exc})")
    for table, count in sorted(manifest.get("row_counts", {}).items()):
        if table not in table_rows:
            problems.append(f"manifest.json counts {count} rows of {table}, but lists no file data/{table}/{table}.parquet")
        elif table_rows[table] != count:
            problems.append(f"data/{table}/{table}.parquet holds {table_rows[table]} rows, manifest.json counts {count}")
    return problems


def _unlisted(folder: Path, listed: set[str]) -> list[str]:
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}
    return [f"{path}: not listed in SHA256SUMS or manifest.json" for path in sorted(found - listed - {"SHA256SUMS"})]


def verify(location: str, deadline_seconds: float = DEADLINE_SECONDS) -> list[str]:
    """Problems found checking a release folder or URL against its manifest and SHA256SUMS
    (for a folder, also files that neither lists)."""
    reader = Reader(location, deadline_seconds)
    try:
        manifest, sums = parse_lists(reader.read("manifest.json"), reader.read("SHA256SUMS"), location)
        problems = _check_files(reader, manifest, None)
    except FetchError as exc:
        return [str(exc)]
    if not is_url(location):
        problems += _unlisted(Path(location), set(sums))
    return problems


def download(base_url: str, version: str, dest: Path, deadline_seconds: float = DEADLINE_SECONDS) -> Path:
    """Fetch release `version` from `base_url` into dest/version, verified; nothing else is
    left under dest whatever happens."""
    parse_version(version)
    if not is_url(base_url):
        raise FetchError(f"{base_url}: not an http(s) URL")
    location = base_url.rstrip("/") + "/" + version
    target = dest / version
    if target.exists() or target.is_symlink():
        raise FetchError(f"{target} already exists; not overwriting it")
    reader = Reader(location, deadline_seconds)
    manifest_bytes, sums_bytes = reader.read("manifest.json"), reader.read("SHA256SUMS")
    manifest, _ = parse_lists(manifest_bytes, sums_bytes, location)
    if manifest["version"] != version:
        raise FetchError(f"{location}: manifest.json is of release {manifest['version']}, not {version}")
    dest.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".download-{version}-", dir=dest))
    try:
        (partial / "manifest.json").write_bytes(manifest_bytes)
        (partial / "SHA256SUMS").write_bytes(sums_bytes)
        problems = _check_files(reader, manifest, partial)
        if problems:
            raise FetchError(f"{location}: the release failed verification: " + "; ".join(problems))
        os.rename(partial, target)  # fails rather than replace a folder made meanwhile
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
