"""The Prefect flow: plan -> process shards -> publish, one snapshot per run.

Thin on purpose: the work lives in `pipeline` (pure stages, shard processing) and `warehouse`
(one-transaction publish); tasks only wrap them over shards so Prefect can schedule, retry and
report them.
"""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task

from . import __version__, schemas, warehouse
from .ingest import SIDECAR_NAME, inventory
from .pipeline import (
    DOCUMENT_TABLES,
    pipeline_version,
    plan_run,
    process_shard,
    reject_row,
    rows_to_table,
    shard_file,
    shards,
    write_table,
)


@dataclass
class RunSummary:
    run_id: str
    snapshot_id: int
    n_files: int
    n_new: int
    n_changed: int
    n_unchanged: int
    n_deleted: int
    n_rejected: int
    n_documents: int
    n_sentences: int
    n_removed: int
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    rejects: list[dict] = field(default_factory=list)


def new_run_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@task(name="plan", persist_result=False)
def plan_task(raw_dir: Path, wh: warehouse.Warehouse):
    found = inventory(raw_dir)
    known: dict = {}
    if wh.exists():
        con = wh.connect(read_only=True)
        try:
            known = warehouse.file_state(con)
        finally:
            con.close()
    known.pop(SIDECAR_NAME, None)  # sidecar problems are re-derived on every run
    return found, plan_run(found.files, known)


@task(name="process-shard", persist_result=False)
def shard_task(raw_dir: Path, files, sources, staging: Path, shard: int):
    return process_shard(raw_dir, files, sources, staging, shard)


@task(name="publish", persist_result=False)
def publish_task(wh, staged, replace_paths, sources, run_row) -> int:
    return warehouse.publish(wh, staged, replace_paths, sources, run_row)


@flow(name="corpus-build", log_prints=True)
def build_flow(raw_dir: str, warehouse_dir: str = "warehouse", shard_size: int = 200) -> RunSummary:
    """Process what is new or changed in `raw_dir` and commit it as one warehouse snapshot."""
    logger = get_run_logger()
    started = datetime.now(timezone.utc).replace(tzinfo=None)
    clock = time.perf_counter()
    raw, wh = Path(raw_dir), warehouse.Warehouse(Path(warehouse_dir))
    run_id = new_run_id(started)
    staging = wh.staging / run_id
    stage_seconds: dict[str, float] = {}

    found, plan = plan_task(raw, wh)
    stage_seconds["plan"] = round(time.perf_counter() - clock, 3)
    logger.info(
        "run %s: %d files (%d new, %d changed, %d unchanged, %d deleted)",
        run_id, len(found.files), len(plan.new), len(plan.changed), len(plan.unchanged),
        len(plan.deleted),
    )

    mark = time.perf_counter()
    sources = {s.source_id: s for s in found.sources}
    # Rejects found while taking inventory (sidecar, unreadable files) are staged as shard 0.
    write_table(
        shard_file(staging, "rejects", 0),
        rows_to_table("rejects", [reject_row(r) for r in found.rejects]),
    )
    futures = [
        shard_task.submit(raw, files, sources, staging, number)
        for number, files in enumerate(shards(plan.to_process, shard_size), start=1)
    ]
    results = [f.result() for f in futures]
    stage_seconds["process"] = round(time.perf_counter() - mark, 3)

    staged = {
        name: sorted(p for p in (staging / name).glob("shard-*.parquet"))
        for name in DOCUMENT_TABLES
    }
    counts = {name: sum(r.counts[name] for r in results) for name in DOCUMENT_TABLES}
    n_rejected = counts["rejects"] + len(found.rejects)
    replace_paths = [f.raw_path for f in plan.to_process] + plan.deleted + [SIDECAR_NAME]
    replace_paths += [r.raw_path for r in found.rejects]

    mark = time.perf_counter()
    run_row = {
        "run_id": run_id,
        "started_at": started,
        "finished_at": datetime.now(timezone.utc).replace(tzinfo=None),
        "code_version": __version__,
        "pipeline_version": pipeline_version(),
        "schema_version": schemas.schema_version(),
        "raw_dir": str(raw_dir),
        "n_files": len(found.files),
        "n_new": len(plan.new),
        "n_changed": len(plan.changed),
        "n_unchanged": len(plan.unchanged),
        "n_deleted": len(plan.deleted),
        "n_rejected": n_rejected,
        "n_documents": counts["documents"],
        "n_sentences": counts["sentences"],
        "n_removed": counts["removed"],
        "seconds": round(time.perf_counter() - clock, 3),
        "stage_seconds": stage_seconds,
    }
    snapshot_id = publish_task(wh, staged, sorted(set(replace_paths)), found.sources, run_row)
    stage_seconds["publish"] = round(time.perf_counter() - mark, 3)
    rejects = _staged_rejects(staged["rejects"])
    shutil.rmtree(staging, ignore_errors=True)
    logger.info("run %s committed snapshot %d", run_id, snapshot_id)
    return RunSummary(
        run_id=run_id,
        snapshot_id=snapshot_id,
        n_files=len(found.files),
        n_new=len(plan.new),
        n_changed=len(plan.changed),
        n_unchanged=len(plan.unchanged),
        n_deleted=len(plan.deleted),
        n_rejected=n_rejected,
        n_documents=counts["documents"],
        n_sentences=counts["sentences"],
        n_removed=counts["removed"],
        seconds=round(time.perf_counter() - clock, 3),
        stage_seconds=stage_seconds,
        rejects=rejects,
    )


def _staged_rejects(files: list[Path]) -> list[dict]:
    rows: list[dict] = []
    for path in files:
        if path.exists():
            rows.extend(pq.read_table(path, columns=["raw_path", "error_kind", "message"]).to_pylist())
    return rows


def summary_dict(summary: RunSummary) -> dict:
    return asdict(summary)
