"""Release: export one snapshot as a self-contained, checksummed folder (checking and fetching: fetch).

Takes a warehouse, a semantic version and a snapshot; gives `<warehouse>/releases/VERSION/`:
`data/<table>/<table>.parquet` (zstd, deterministic order, byte-identical on re-export),
`manifest.json`, `SHA256SUMS` (checkable with `sha256sum -c`), a dataset card `README.md`,
`CHANGELOG.md` against the previous release and Croissant metadata `croissant.json`.

Version policy (semantic versioning for data), enforced against the latest release:
major = the schema's major version changed; minor = documents were added or removed, or the
schema gained columns; patch = the same documents, reprocessed (cleaning or segmentation
fixes). A version must be new, greater than every earlier one and at least the required bump;
a snapshot is released once; release folders are never overwritten.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flows import __version__
from flows.release import card
from flows import schemas
from flows import warehouse
from flows.stages.ingest import hash_file

RELEASE_TABLES = ("documents", "sentences", "removed", "edits", "rejects", "files", "sources", "runs")
ROW_GROUP_ROWS = 100_000
# ASCII digits only (\d takes any script's) and the whole string (fullmatch: `$` alone also
# matches before a final newline).
_VERSION = re.compile(r"(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})")
_BUMPS = ("patch", "minor", "major")


class ReleaseError(ValueError):
    """A release request that breaks the version policy, or a release that fails checks."""


def parse_version(version: str) -> tuple[int, int, int]:
    match = _VERSION.fullmatch(version)
    if not match:
        raise ReleaseError(f"version {version!r} is not MAJOR.MINOR.PATCH (e.g. 1.0.0)")
    return tuple(int(part) for part in match.groups())  # type: ignore[return-value]


def _bump(old: tuple[int, int, int], new: tuple[int, int, int]) -> str:
    return "major" if new[0] > old[0] else "minor" if new[1] > old[1] else "patch"


def sha256_file(path: Path) -> str:
    return hash_file(path)[0]


def releases(root: Path) -> list[dict]:
    """Manifests of the releases under `root`, oldest version first."""
    found = []
    for manifest in root.glob("*/manifest.json") if root.exists() else []:
        found.append(json.loads(manifest.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: parse_version(m["version"]))


# --- export ----------------------------------------------------------------------------------


def write_table_file(wh: warehouse.Warehouse, table: str, snapshot: int, path: Path) -> int:
    """Stream one table at a snapshot into Parquet, in fixed-size row groups, so the bytes
    depend only on the rows (re-exporting gives the same checksum)."""
    schema = schemas.table(table).arrow_schema()
    path.parent.mkdir(parents=True, exist_ok=True)
    rows, buffered = 0, schema.empty_table()
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in warehouse.export_batches(wh, table, snapshot):
            buffered = pa.concat_tables([buffered, pa.Table.from_batches([batch]).cast(schema)])
            rows += batch.num_rows
            while buffered.num_rows >= ROW_GROUP_ROWS:
                writer.write_table(buffered.slice(0, ROW_GROUP_ROWS).combine_chunks())
                buffered = buffered.slice(ROW_GROUP_ROWS)
        if buffered.num_rows:
            writer.write_table(buffered.combine_chunks())
    return rows


def export(wh: warehouse.Warehouse, snapshot: int, folder: Path) -> dict[str, int]:
    """Write every release table as of `snapshot` under folder/data/; row counts per table."""
    return {
        table: write_table_file(wh, table, snapshot, folder / "data" / table / f"{table}.parquet")
        for table in RELEASE_TABLES
    }


def _file_entries(folder: Path, names: list[str]) -> list[dict]:
    return [{"path": n, "bytes": (folder / n).stat().st_size, "sha256": sha256_file(folder / n)} for n in names]


def required_bump(previous: dict | None, changes: dict[str, list]) -> str:
    if previous is None:
        return "patch"
    old_schema, new_schema = (parse_version(v) for v in (previous["schema_version"], schemas.schema_version()))
    if new_schema[0] != old_schema[0]:
        return "major"
    if new_schema[1] != old_schema[1] or changes["documents added"] or changes["documents removed"]:
        return "minor"
    return "patch"


def release(wh: warehouse.Warehouse, version: str, snapshot: int | None = None) -> Path:
    """Export `snapshot` (default: the latest) as release `version`; returns its folder."""
    number = parse_version(version)
    root = wh.root / "releases"
    target = root / version
    if target.exists() or target.is_symlink():
        raise ReleaseError(f"release {version} already exists at {target}; releases are never overwritten")
    if root.is_symlink() and not root.is_dir():
        raise ReleaseError(f"{root} is a symbolic link to {os.readlink(root)}, which is not a folder: "
                           "remove it, or point it at a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReleaseError(f"cannot create the releases folder {root}: {exc.strerror or exc}") from None
    snapshot = warehouse.latest_snapshot(wh) if snapshot is None else snapshot
    history = releases(root)
    for earlier in history:
        if earlier["snapshot_id"] == snapshot:
            raise ReleaseError(f"snapshot {snapshot} is already released as {earlier['version']}")
    previous = history[-1] if history else None
    if previous:
        if number <= parse_version(previous["version"]):
            raise ReleaseError(f"version {version} is not greater than the latest release {previous['version']}")
        if snapshot < previous["snapshot_id"]:
            raise ReleaseError(f"snapshot {snapshot} is older than release {previous['version']} "
                               f"(snapshot {previous['snapshot_id']})")
    changes = warehouse.diff(wh, previous["snapshot_id"] if previous else 0, snapshot)
    needed = required_bump(previous, changes)
    if previous and _BUMPS.index(_bump(parse_version(previous["version"]), number)) < _BUMPS.index(needed):
        raise ReleaseError(f"{version} is a {_bump(parse_version(previous['version']), number)} release, but "
                           f"the changes since {previous['version']} need a {needed} bump (see the version policy)")

    staging = root / f".partial-{version}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        counts = export(wh, snapshot, staging)
        data_files = [f"data/{t}/{t}.parquet" for t in RELEASE_TABLES]
        manifest = {
            "version": version,
            "snapshot_id": snapshot,
            "snapshot_time": warehouse.snapshot_time(wh, snapshot),
            "code_version": __version__,
            "schema_version": schemas.schema_version(),
            "previous_release": previous["version"] if previous else None,
            "row_counts": counts,
            "files": _file_entries(staging, data_files),
        }
        chart_files = _write_charts(staging)
        manifest["files"] += _file_entries(staging, chart_files)
        stats = card.statistics(staging)
        docs = {
            "README.md": card.dataset_card(manifest, stats, chart_files),
            "CHANGELOG.md": card.changelog(manifest, previous, changes),
            "croissant.json": json.dumps(card.croissant(manifest), indent=1, ensure_ascii=False) + "\n",
        }
        for name, text in docs.items():
            (staging / name).write_text(text, encoding="utf-8")
        manifest["files"] += _file_entries(staging, sorted(docs))
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        listed = manifest["files"] + _file_entries(staging, ["manifest.json"])
        (staging / "SHA256SUMS").write_text("".join(f"{f['sha256']}  {f['path']}\n" for f in listed))
        os.rename(staging, target)  # atomic; fails rather than replace an existing folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_charts(folder: Path) -> list[str]:
    """The dataset's charts as SVG files under folder/charts/, drawn from the released Parquet
    files (the same charts as `corpus report`); their paths relative to the folder."""
    from flows.release.charts import charts

    con = warehouse.parquet_connection(folder)
    try:
        svgs = charts(con)
    finally:
        con.close()
    (folder / "charts").mkdir()
    for name, svg in svgs.items():
        (folder / "charts" / f"{name}.svg").write_text(svg, encoding="utf-8")
    return [f"charts/{name}.svg" for name in svgs]
