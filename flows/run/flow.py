"""The Prefect flow: plan -> fingerprint -> process shards -> publish, one snapshot per run.

Thin on purpose: the work lives in `flows.stages` (pure stages), `shards` and `warehouse`
(repeat planning, one-transaction publish); tasks only wrap them over shards so Prefect can
schedule, retry and report them. Shard tasks run in a local process pool, or on Dask through
prefect-dask (`run_build(..., dask=...)`). A run that fails commits nothing and says so.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Cancelled, Completed, Failed
from prefect.tasks import exponential_backoff

from flows import __version__
from flows.run import executors, planning
from flows.warehouse import migrate, publish
from flows.run import report
from flows import schemas
from flows.warehouse import search_index
from flows.warehouse import state
from flows import warehouse
from flows.faults import fault_point
from flows.parquet import column_counts
from flows.stages.document import DOCUMENT_TABLES, reject_row
from flows.run.shards import FileRange, fingerprint_shard, rows_to_table, shard_file, write_table
from flows.stages.version import pipeline_version
from flows.stages.rules import rules


@dataclass
class RunSummary:
    run_id: str
    snapshot_id: int
    counts: dict[str, int]  # the runs table's n_* columns
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    rejects: list[dict] = field(default_factory=list)
    upgraded: str | None = None  # what the upgrade of an older schema's warehouse did (migrate)


def new_run_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


# Shard tasks only read raw files and write their own staging files, so a retry is safe;
# bad input never raises (it becomes a reject), so what is retried is transient trouble.
# Planning runs on the executor too, and repeat planning in a fresh process: the memory their
# Parquet and DuckDB work leaves behind stays out of the flow's own process.


@task(name="plan", persist_result=False, cache_policy=NO_CACHE)
def plan_task(raw_dir: Path, wh: warehouse.Warehouse, collection: str | None, folder: Path) -> planning.RunPlan:
    """Inventory the raw folder and compare it with the warehouse (or the collection in it)."""
    return executors.current().run(planning.plan, raw_dir, wh, collection, folder)


@task(name="fingerprint-shard", persist_result=False, cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])
def fingerprint_task(raw_dir: Path, files: FileRange, staging: Path, shard: int) -> int:
    return executors.current().run(fingerprint_shard, raw_dir, files, staging, shard)


@task(name="plan-repeats", persist_result=False, cache_policy=NO_CACHE)
def repeats_task(wh, staging: Path, gone_paths: Path, collection: str | None) -> tuple[int, list[str]]:
    """Stage the run's repeated lines at staging/repeats.parquet; give their number and the
    unchanged files whose output that changes."""
    fingerprints = sorted((staging / "fingerprints").glob("shard-*.parquet"))
    min_docs = rules()["structure"]["cross_document_min_docs"]
    return executors.current().run_fresh(state.repeat_plan, wh, fingerprints, gone_paths, min_docs,
                                         _repeats_file(staging), collection)


def _repeats_file(staging: Path) -> Path:
    return staging / "repeats.parquet"


@task(name="process-shard", persist_result=False, cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])
def shard_task(raw_dir: Path, files: FileRange, sources, staging: Path, shard: int):
    return executors.current().run(planning.process_planned_shard, raw_dir, files, sources, _repeats_file(staging), staging, shard)


def _transient(task, task_run, state) -> bool:
    return publish.is_transient(state.result(raise_on_failure=False))


# A failed publish rolled back; retried with backoff when the error may pass (a catalog briefly
# locked or unreachable). Losing commit races to other writers is retried inside publish itself.
@task(name="publish", persist_result=False, cache_policy=NO_CACHE, retries=3,
      retry_delay_seconds=exponential_backoff(backoff_factor=2), retry_condition_fn=_transient)
def publish_task(wh, staged, replace_paths, sources, run_row, collection) -> int:
    return publish.publish(wh, staged, replace_paths, sources, run_row, collection,
                           on_retry=get_run_logger().warning, in_process=executors.current().run)


@task(name="remove-orphans", persist_result=False, cache_policy=NO_CACHE)
def orphans_task(wh, collection: str | None) -> None:
    """Data files of runs that died mid-publish. The run is committed already: a cleanup that
    fails is only logged (the next run tries again)."""
    try:
        if removed := publish.remove_orphans(wh, collection):
            get_run_logger().info("removed %d data files no snapshot references (left by a run that died)", removed)
    except Exception as exc:  # noqa: BLE001 (the data is safe; the next run retries)
        get_run_logger().warning("orphan data files not removed: %s: %s", type(exc).__name__, exc)


@task(name="search-index", persist_result=False, cache_policy=NO_CACHE)
def index_task(wh, snapshot_id: int) -> None:
    """The full-text index of the new snapshot. The run is committed already: an index that
    fails to build is only logged (`corpus search` builds a missing one itself)."""
    try:
        executors.current().run(search_index.build_index, wh, snapshot_id)
    except Exception as exc:  # noqa: BLE001 (the data is safe; searching will retry)
        get_run_logger().warning("search index of snapshot %d not built: %s: %s", snapshot_id, type(exc).__name__, exc)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@flow(name="corpus-build", log_prints=True)
def build_flow(raw_dir: str, warehouse_dir: str = "warehouse", shard_size: int = 0, workers: int = 0,
               catalog: str | None = None, collection: str | None = None):
    """Process what is new or changed in `raw_dir` and commit it as one warehouse snapshot.

    Holds the warehouse's run lock (of the collection) throughout. A run that finds it busy
    (another run, scheduled or not) is skipped: it ends Cancelled with a clear message and
    changes nothing. `workers` processes do the shard work (0: one per core); `shard_size` files
    per shard task (0: from the number of files, see shards.shard_size_for). `catalog`: a
    PostgreSQL URL for the catalog; `collection`: the part of a shared warehouse this raw folder
    is (several hosts, one collection each, may run at once).
    """
    with ExitStack() as stack:
        try:
            wh = warehouse.Warehouse(Path(warehouse_dir), catalog)
            stack.enter_context(wh.run_lock(warehouse.check_collection(collection)))
        except warehouse.WarehouseError as exc:
            get_run_logger().warning("skipped: %s", exc)
            return Cancelled(message=f"skipped: {exc}", data=RunSkipped(str(exc)))
        stack.enter_context(executors.using(executors.Executor(workers or os.cpu_count() or 1)))
        try:
            return _build(raw_dir, wh, shard_size, collection)
        except RunFailed as exc:  # a Failed state with the reason, not a second traceback
            get_run_logger().error("%s", exc)
            return Failed(message=str(exc), data=exc)


class RunFailed(RuntimeError):
    """A run that stopped (a full disk, an unreadable catalog...): nothing was committed.
    The flow's Failed state carries it: `state.result()` raises it."""


class RunSkipped(RuntimeError):
    """A run that found the warehouse (or its collection) busy and changed nothing. The flow's
    Cancelled state carries it: `state.result()` raises it."""


@dataclass
class _Run:
    """One run's identity, places and clock."""

    raw: Path
    wh: warehouse.Warehouse
    shard_size: int
    collection: str | None
    started: datetime = field(default_factory=_utcnow)
    clock: float = field(default_factory=time.perf_counter)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    upgraded: str | None = None

    def __post_init__(self) -> None:
        self.run_id = new_run_id(self.started)
        self.staging = self.wh.staging_for(self.collection) / self.run_id

    def lap(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.stage_seconds[stage] = round(now - since, 3)
        return now


def _build(raw_dir: str, wh: warehouse.Warehouse, shard_size: int, collection: str | None):
    run = _Run(Path(raw_dir), wh, shard_size, collection)
    _remove_dead_staging(run.staging.parent)
    try:
        run.upgraded = migrate.upgrade(wh)
    except warehouse.WarehouseError as exc:
        raise RunFailed(f"run {run.run_id} committed nothing: {exc}") from exc
    if run.upgraded:
        get_run_logger().warning("%s", run.upgraded)
    try:
        return _stage_and_publish(run)
    except Exception as exc:
        # The publish transaction rolled back (or never began): free the staging space (a
        # full disk is a common cause) and say plainly that the warehouse is unchanged.
        shutil.rmtree(run.staging, ignore_errors=True)
        raise RunFailed(f"run {run.run_id} failed and committed nothing (the warehouse is unchanged): "
                        f"{type(exc).__name__}: {exc}") from exc


def _stage_and_publish(run: _Run):
    logger = get_run_logger()
    planned = plan_task(run.raw, run.wh, run.collection, run.staging / "plan")
    mark = run.lap("plan", run.clock)
    n_read = planned.counts["new"] + planned.counts["changed"]
    to_read = executors.current().run(planning.file_ranges, run.wh, planned.lists.read, n_read, run.collection, run.shard_size)
    for future in [fingerprint_task.submit(run.raw, r, run.staging, n) for n, r in enumerate(to_read, 1)]:
        future.result()
    n_repeats, context_paths = repeats_task(run.wh, run.staging, planned.lists.gone, run.collection)
    process_list, n_process, n_context = executors.current().run(planning.add_context, run.wh, planned, context_paths)
    mark = run.lap("fingerprint", mark)
    found = planned.counts
    logger.info(
        "run %s: %d files (%d new, %d changed, %d reprocessed for repeats, %d unchanged, %d deleted); "
        "%d lines repeated across documents of a source",
        run.run_id, found["files"], found["new"], found["changed"], n_context,
        found["unchanged"] - n_context, found["deleted"], n_repeats,
    )

    # Rejects found while taking inventory (sidecar, unreadable files) are staged as shard 0,
    # only when they changed: an unchanged raw folder must leave the data untouched.
    if planned.inventory_changed:
        write_table(shard_file(run.staging, "rejects", 0),
                    rows_to_table("rejects", [reject_row(r) for r in planned.rejects]))
    batches = executors.current().run(planning.file_ranges, run.wh, process_list, n_process, run.collection, run.shard_size)
    sources = {s.source_id: s for s in planned.sources}
    futures = [shard_task.submit(run.raw, files, sources, run.staging, n) for n, files in enumerate(batches, start=1)]
    results = []
    with _progress(n_process) as advance:
        for done, future in enumerate(futures, start=1):
            results.append(future.result())
            advance(len(batches[done - 1]))
            elapsed = time.perf_counter() - mark
            logger.info("processed shard %d/%d (%.1f files/s, about %.0f s left)", done, len(futures),
                        sum(len(b) for b in batches[:done]) / max(elapsed, 1e-9),
                        elapsed / done * (len(futures) - done))
            fault_point("processing")
    mark = run.lap("process", mark)
    executors.current().release_workers()
    fault_point("staged")

    staged = {name: sorted((run.staging / name).glob("shard-*.parquet")) for name in DOCUMENT_TABLES}
    written = {name: sum(r.counts[name] for r in results) for name in DOCUMENT_TABLES}
    counts = {
        "n_files": found["files"],
        "n_new": found["new"],
        "n_changed": found["changed"],
        "n_context_changed": n_context,
        "n_unchanged": found["unchanged"] - n_context,
        "n_deleted": found["deleted"],
        "n_rejected": written["rejects"] + (len(planned.rejects) if planned.inventory_changed else 0),
        "n_documents": written["documents"],
        "n_sentences": written["sentences"],
        "n_removed": written["removed"],
    }
    run_row = {
        "run_id": run.run_id, "started_at": run.started, "finished_at": _utcnow(),
        "code_version": __version__, "pipeline_version": pipeline_version(),
        "schema_version": schemas.schema_version(), "raw_dir": str(run.raw),
        **counts,
        "seconds": round(time.perf_counter() - run.clock, 3), "stage_seconds": run.stage_seconds,
        "lang_detector": rules()["language"]["detector"],
    }
    rejects = _staged_rejects(staged["rejects"])
    snapshot_id = publish_task(run.wh, staged, planned.lists.replace, planned.sources, run_row,
                               run.collection)
    mark = run.lap("publish", mark)
    orphans_task(run.wh, run.collection)
    index_task(run.wh, snapshot_id)
    run.lap("index", mark)
    counts["n_sentences_deleted"] = _sentences_deleted(run.wh, snapshot_id)
    create_markdown_artifact(
        key="corpus-run-report",
        markdown=report.markdown(run.run_id, snapshot_id, counts, run.stage_seconds, rejects,
                                 column_counts(staged["removed"], "rule"),
                                 column_counts(staged["sentences"], "lang")),
        description=f"Corpus run {run.run_id}",
    )
    create_table_artifact(key="corpus-run-counts", table=report.table(counts, run.stage_seconds))
    shutil.rmtree(run.staging, ignore_errors=True)
    logger.info("run %s committed snapshot %d", run.run_id, snapshot_id)
    summary = RunSummary(run.run_id, snapshot_id, counts, round(time.perf_counter() - run.clock, 3),
                         run.stage_seconds, rejects, run.upgraded)
    if rejects:
        return Completed(name="Completed with rejects", data=summary,
                         message=f"completed with {len(rejects)} reject(s)")
    return summary


def _sentences_deleted(wh: warehouse.Warehouse, snapshot_id: int) -> int:
    rows = warehouse.query(wh, f"SELECT n_sentences_deleted FROM runs WHERE snapshot_id = {int(snapshot_id)}")[1]
    return int(rows[0][0]) if rows else 0


@contextmanager
def _progress(total: int):
    """A progress bar (files done, rate, ETA) on a terminal; nothing extra otherwise, where the
    per-shard log lines say the same."""
    if not sys.stderr.isatty() or not total:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("files"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        bar = progress.add_task("process", total=total)
        yield lambda n: progress.advance(bar, n)


def _remove_dead_staging(staging: Path) -> None:
    """Staging left by a killed run: safe to delete, the caller holds the lock of the warehouse
    (or of the collection, whose runs alone stage here)."""
    if staging.exists():
        for leftover in staging.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)


def _staged_rejects(files: list[Path]) -> list[dict]:
    rows: list[dict] = []
    for path in files:
        rows.extend(pq.read_table(path, columns=["raw_path", "error_kind", "message"]).to_pylist())
    return rows


def dask_task_runner(address: str, workers: int = 0):
    """Prefect's Dask task runner (prefect-dask): shard tasks run on the Dask scheduler at
    `address` ("tcp://host:8786"), or with "local" on a LocalCluster of `workers` processes
    (0: one per core) started for the run and stopped after it.

    Dask workers read raw files and write staging files by path, so on a real cluster the raw
    folder and the warehouse must be on storage every worker mounts at the same path.
    """
    from prefect_dask import DaskTaskRunner

    if address == "local":
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": workers or os.cpu_count() or 1, "threads_per_worker": 1,
                            "processes": True, "dashboard_address": None},
        )
    return DaskTaskRunner(address=address)


def run_build(raw_dir: str, warehouse_dir: str, shard_size: int = 0, workers: int = 0, dask: str | None = None,
              catalog: str | None = None, collection: str | None = None):
    """Run the build flow (returning its final state): shard tasks in a local process pool of
    `workers`, or on Dask when `dask` is an address or "local"."""
    if dask:
        flow_on_dask = build_flow.with_options(task_runner=dask_task_runner(dask, workers))
        return flow_on_dask(raw_dir, warehouse_dir, shard_size, 1, catalog, collection,
                            return_state=True)  # 1: no local pool
    return build_flow(raw_dir, warehouse_dir, shard_size, workers, catalog, collection, return_state=True)


class SchedulerNotRunning(RuntimeError):
    """The Prefect server does not schedule runs of the served deployment."""


def serve(raw_dir: str, warehouse_dir: str, cron: str | None, interval: float | None, name: str,
          catalog: str | None = None, collection: str | None = None, check_seconds: float = 60.0,
          on_ready=print) -> None:
    """Register the build flow as a deployment with its schedule and serve it (blocks).

    Before serving, waits up to `check_seconds` for the server's scheduler to create the
    deployment's first scheduled run, and raises SchedulerNotRunning if it does not: a server
    without a working scheduler service would otherwise take the schedule and never fire it.
    At most one run of the deployment at a time (a new one is cancelled while one runs), and
    the warehouse lock guards against runs from anywhere else.
    """
    import asyncio

    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.runner import Runner

    runner = Runner(name=name)
    deployment_id = runner.add_flow(
        build_flow,
        name=name,
        cron=cron,
        interval=interval,
        parameters={"raw_dir": str(Path(raw_dir).resolve()), "warehouse_dir": str(Path(warehouse_dir).resolve()),
                    "catalog": catalog, "collection": collection},
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        description="Process what is new or changed in the raw folder into one warehouse snapshot.",
    )
    first = _first_scheduled_run(deployment_id, check_seconds)
    if first is None:
        raise SchedulerNotRunning(
            f"the Prefect server at {os.environ.get('PREFECT_API_URL')} scheduled no run of deployment "
            f"{build_flow.name}/{name} within {check_seconds:.0f} s: its scheduler service is not running "
            "or is failing (see the server's log)")
    on_ready(f"serving {build_flow.name}/{name}: next run scheduled for {first:%Y-%m-%d %H:%M:%S %Z}")
    asyncio.run(runner.start())


def _first_scheduled_run(deployment_id, seconds: float) -> datetime | None:
    """The earliest start time of a run the server's scheduler created for the deployment
    (creating or updating a deployment deletes its earlier scheduled runs), or None if none
    appears within `seconds`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    only_this = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    deadline = time.monotonic() + seconds
    with get_client(sync_client=True) as client:
        while True:
            scheduled = [r for r in client.read_flow_runs(deployment_filter=only_this, limit=20) if r.auto_scheduled]
            if scheduled:
                return min(r.expected_start_time for r in scheduled)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)
