"""The Prefect flow: plan -> fingerprint -> process shards -> publish, one snapshot per run.

Thin on purpose: the work lives in `pipeline` (pure stages, shard processing) and `warehouse`
(repeat planning, one-transaction publish); tasks only wrap them over shards so Prefect can
schedule, retry and report them.
"""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task

from . import __version__, schemas, warehouse
from .faults import fault_point
from .ingest import inventory
from .pipeline import (
    DOCUMENT_TABLES,
    fingerprint_shard,
    pipeline_version,
    plan_run,
    process_shard,
    reject_row,
    rows_to_table,
    shard_file,
    shards,
    write_table,
)
from .records import stable_id
from .rules import rules


@dataclass
class RunSummary:
    run_id: str
    snapshot_id: int
    counts: dict[str, int]  # the runs table's n_* columns
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    rejects: list[dict] = field(default_factory=list)


def new_run_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@task(name="plan", persist_result=False)
def plan_task(raw_dir: Path, wh: warehouse.Warehouse):
    """Inventory the raw folder and compare it with the warehouse.

    Returns the inventory, the plan, and whether the inventory's own rejects (sidecar problems,
    unreadable files) differ from the stored ones, i.e. must be rewritten.
    """
    found = inventory(raw_dir)
    known: dict = {}
    stored_rejects: set = set()
    if wh.exists():
        con = wh.connect(read_only=True)
        try:
            known = warehouse.file_state(con)
            stored_rejects = warehouse.inventory_rejects(con, {f.raw_path for f in found.files})
        finally:
            con.close()
    inventory_paths = {r.raw_path for r in found.rejects} | {p for p, _, _ in stored_rejects}
    for path in inventory_paths:
        known.pop(path, None)  # decided by the inventory, not by the planner
    fresh_rejects = {(r.raw_path, r.error_kind, r.message) for r in found.rejects}
    return found, plan_run(found.files, known), fresh_rejects != stored_rejects, inventory_paths


@task(name="fingerprint-shard", persist_result=False)
def fingerprint_task(raw_dir: Path, files, staging: Path, shard: int) -> int:
    return fingerprint_shard(raw_dir, files, staging, shard)


@task(name="plan-repeats", persist_result=False)
def repeats_task(wh, staging: Path, gone_doc_ids: list[str]):
    fingerprints = sorted((staging / "fingerprints").glob("shard-*.parquet"))
    min_docs = rules()["structure"]["cross_document_min_docs"]
    return warehouse.repeat_plan(wh, fingerprints, gone_doc_ids, min_docs)


@task(name="process-shard", persist_result=False)
def shard_task(raw_dir: Path, files, sources, repeats, staging: Path, shard: int):
    return process_shard(raw_dir, files, sources, repeats, staging, shard)


@task(name="publish", persist_result=False)
def publish_task(wh, staged, replace_paths, sources, run_row) -> int:
    return warehouse.publish(wh, staged, replace_paths, sources, run_row)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@flow(name="corpus-build", log_prints=True)
def build_flow(raw_dir: str, warehouse_dir: str = "warehouse", shard_size: int = 200) -> RunSummary:
    """Process what is new or changed in `raw_dir` and commit it as one warehouse snapshot.

    Holds the warehouse's run lock throughout: a second run on the same warehouse fails fast.
    """
    with warehouse.Warehouse(Path(warehouse_dir)).run_lock():
        return _build(raw_dir, warehouse_dir, shard_size)


def _build(raw_dir: str, warehouse_dir: str, shard_size: int) -> RunSummary:
    logger = get_run_logger()
    started, clock = _utcnow(), time.perf_counter()
    raw, wh = Path(raw_dir), warehouse.Warehouse(Path(warehouse_dir))
    run_id = new_run_id(started)
    staging = wh.staging / run_id
    stage_seconds: dict[str, float] = {}

    def lap(stage: str, since: float) -> float:
        now = time.perf_counter()
        stage_seconds[stage] = round(now - since, 3)
        return now

    _remove_dead_staging(wh)
    found, plan, inventory_changed, inventory_paths = plan_task(raw, wh)
    mark = lap("plan", clock)
    batches = shards(plan.to_process, shard_size)
    for future in [fingerprint_task.submit(raw, b, staging, n) for n, b in enumerate(batches, 1)]:
        future.result()
    gone = [stable_id("path", p) for p in [f.raw_path for f in plan.to_process] + plan.deleted]
    repeats, context_paths = repeats_task(wh, staging, gone)
    context_changed = [f for f in plan.unchanged if f.raw_path in set(context_paths)]
    to_process = sorted(plan.to_process + context_changed, key=lambda f: f.raw_path)
    mark = lap("fingerprint", mark)
    logger.info(
        "run %s: %d files (%d new, %d changed, %d reprocessed for repeats, %d unchanged, %d deleted)",
        run_id, len(found.files), len(plan.new), len(plan.changed), len(context_changed),
        len(plan.unchanged) - len(context_changed), len(plan.deleted),
    )

    # Rejects found while taking inventory (sidecar, unreadable files) are staged as shard 0,
    # only when they changed: an unchanged raw folder must leave the data untouched.
    if inventory_changed:
        write_table(shard_file(staging, "rejects", 0),
                    rows_to_table("rejects", [reject_row(r) for r in found.rejects]))
    futures = [
        shard_task.submit(raw, files, {s.source_id: s for s in found.sources}, repeats, staging, n)
        for n, files in enumerate(shards(to_process, shard_size), start=1)
    ]
    results = []
    for future in futures:
        results.append(future.result())
        fault_point("processing")
    mark = lap("process", mark)
    fault_point("staged")

    staged = {name: sorted((staging / name).glob("shard-*.parquet")) for name in DOCUMENT_TABLES}
    written = {name: sum(r.counts[name] for r in results) for name in DOCUMENT_TABLES}
    counts = {
        "n_files": len(found.files),
        "n_new": len(plan.new),
        "n_changed": len(plan.changed),
        "n_context_changed": len(context_changed),
        "n_unchanged": len(plan.unchanged) - len(context_changed),
        "n_deleted": len(plan.deleted),
        "n_rejected": written["rejects"] + (len(found.rejects) if inventory_changed else 0),
        "n_documents": written["documents"],
        "n_sentences": written["sentences"],
        "n_removed": written["removed"],
    }
    replace_paths = {f.raw_path for f in to_process} | set(plan.deleted)
    if inventory_changed:
        replace_paths |= inventory_paths
    run_row = {
        "run_id": run_id, "started_at": started, "finished_at": _utcnow(),
        "code_version": __version__, "pipeline_version": pipeline_version(),
        "schema_version": schemas.schema_version(), "raw_dir": str(raw_dir),
        **counts,
        "seconds": round(time.perf_counter() - clock, 3), "stage_seconds": stage_seconds,
    }
    rejects = _staged_rejects(staged["rejects"])
    snapshot_id = publish_task(wh, staged, sorted(replace_paths), found.sources, run_row)
    lap("publish", mark)
    shutil.rmtree(staging, ignore_errors=True)
    logger.info("run %s committed snapshot %d", run_id, snapshot_id)
    return RunSummary(run_id, snapshot_id, counts, round(time.perf_counter() - clock, 3),
                      stage_seconds, rejects)


def _remove_dead_staging(wh: warehouse.Warehouse) -> None:
    """Staging left by a killed run: safe to delete, the caller holds the warehouse lock."""
    if wh.staging.exists():
        for leftover in wh.staging.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)


def _staged_rejects(files: list[Path]) -> list[dict]:
    rows: list[dict] = []
    for path in files:
        rows.extend(pq.read_table(path, columns=["raw_path", "error_kind", "message"]).to_pylist())
    return rows
