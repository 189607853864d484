"""The `corpus` command: run the pipeline, query the warehouse, list versions and rules.

Every command takes --warehouse DIR (default: warehouse/, or $CORPUS_WAREHOUSE) and, for a
catalog in PostgreSQL, --catalog URL ($CORPUS_CATALOG; once, the folder remembers). Errors a user
can act on are printed as one line on stderr with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from flows.run import prefect_server
from flows import warehouse
from flows.warehouse import migrate
from flows.interface import desk
from flows.interface.common import (collection_option, emit, fail, format_option, lang_detector_option, printable,
                                     render_table, warehouse_options)
from flows.stages.ingest import RawDirError, check_raw_dir
from flows.schemas import SchemaError

EXAMPLE_QUERY = (
    "SELECT section, count(*) AS sentences, round(avg(n_words), 1) AS avg_words "
    "FROM sentences GROUP BY section ORDER BY sentences DESC"
)

EXIT_COMPLETED_WITH_REJECTS = 3  # the snapshot was committed; some files were rejected


def _prefect_environment() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A run without PREFECT_API_URL starts a temporary Prefect server; Prefect's default start-up
    # limit is too short on a busy small machine (several hosts' runs, or a test suite).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="corpus-pipeline")
def main() -> None:
    """Scraped documents in, a versioned sentence-level dataset out.

    \b
    corpus run raw/sample          process new/changed files into a new snapshot
    corpus sql "SELECT ..."        query the current tables (or --at N)
    corpus versions                list snapshots with their runs
    corpus diff A B                what changed between two snapshots
    corpus release 1.0.0           export a snapshot as a checksummed release
    corpus verify PATH_OR_URL      check a release against its checksums
    corpus download URL 1.0.0 DIR  fetch and verify a release
    corpus shell                   the DuckDB command line on the warehouse
    corpus search "words"          sentences ranked by relevance (BM25)
    corpus kwic "phrase"           keyword in context, aligned
    corpus report OUT.html         charts of the dataset in one HTML page
    corpus rules                   list the cleaning rules
    corpus split FILE              clean + segment + language of one text, as JSON
    """


@main.command()
@click.argument("raw_dir", type=click.Path(path_type=Path), default="raw", required=False)
@warehouse_options
@click.option("--shard-size", default=0, show_default=True,
              help="Files per shard task (0: automatic, 200-1000 from the number of files).")
@click.option("--workers", default=0, show_default=True, envvar="CORPUS_WORKERS",
              help="Worker processes (0: one per core; 1: the work runs in the run's own process, one shard at a time).")
@click.option("--dask", "dask_address", default=None, metavar="ADDRESS|local",
              help="Run the shard tasks on the Dask scheduler at ADDRESS (tcp://host:8786), or on a "
                   "LocalCluster of --workers processes with 'local'.")
@collection_option
@lang_detector_option
def run(raw_dir: Path, wh: warehouse.Warehouse, shard_size: int, workers: int, dask_address: str | None,
        collection: str | None) -> None:
    """Run the pipeline on RAW_DIR (default: raw/) and commit one snapshot.

    Only files that are new or changed (bytes or pipeline version) are processed; files gone
    from RAW_DIR have their rows removed. Bad files become rejects; the run goes on.
    With --collection NAME, RAW_DIR is that part of a shared warehouse (raw paths start with
    NAME/): hosts with one collection each can run at the same time.
    """
    try:
        check_raw_dir(raw_dir)
    except RawDirError as exc:
        fail(str(exc))
    _prefect_environment()
    server = prefect_server.start_unless_configured()  # boots while the pipeline imports
    from flows.run.flow import RunFailed, RunSkipped, run_build  # Prefect is imported only when a run needs it

    try:
        with wh.run_lock(warehouse.check_collection(collection)):  # fail fast if busy; the flow locks too
            pass
        if server:
            server.wait_ready(float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
        state = run_build(str(raw_dir), str(wh.root), shard_size, workers, dask_address, wh.catalog_url, collection)
        summary = state.result()  # raises RunSkipped, RunFailed, or a bug's own error
    except (warehouse.WarehouseError, SchemaError, RunFailed, RunSkipped, prefect_server.ServerError) as exc:
        fail(str(exc))
    click.echo("")
    if summary.upgraded:
        click.echo(summary.upgraded)
    click.echo(f"Run {summary.run_id} committed snapshot {summary.snapshot_id} "
               f"in {summary.seconds:.1f} s")
    n = summary.counts
    click.echo(f"  files      {n['n_files']} ({n['n_new']} new, {n['n_changed']} changed, "
               f"{n['n_context_changed']} reprocessed for repeats, {n['n_unchanged']} unchanged, "
               f"{n['n_deleted']} deleted)")
    click.echo(f"  documents  {n['n_documents']}")
    click.echo(f"  sentences  {n['n_sentences']} added, {n.get('n_sentences_deleted', 0)} deleted")
    click.echo(f"  removed    {n['n_removed']} lines")
    click.echo(f"  rejects    {n['n_rejected']}" + (" (completed with rejects)" if summary.rejects else ""))
    for reject in summary.rejects:
        click.echo(f"    - {printable(reject['raw_path'])}: {reject['error_kind']}: {printable(reject['message'])}")
    click.echo("")
    click.echo(f'Example: corpus sql "{EXAMPLE_QUERY}"')
    columns, rows = warehouse.query(wh, EXAMPLE_QUERY)
    click.echo(render_table(columns, rows))
    if summary.rejects:
        click.echo(f"completed with rejects: {len(summary.rejects)} file(s) not loaded, listed above "
                   "and in the rejects table", err=True)
        sys.exit(EXIT_COMPLETED_WITH_REJECTS)


@main.command()
@click.argument("raw_dir", type=click.Path(path_type=Path), default="raw", required=False)
@warehouse_options
@click.option("--cron", default=None, help='Cron schedule, e.g. "0 3 * * *" (03:00 every day).')
@click.option("--interval", type=float, default=None, help="Or: run every SECONDS.")
@click.option("--name", default="scheduled", show_default=True, help="Deployment name.")
@click.option("--scheduler-timeout", type=float, default=60.0, show_default=True, metavar="SECONDS",
              help="How long to wait for the server's scheduler to schedule the first run.")
@collection_option
def serve(raw_dir: Path, wh: warehouse.Warehouse, cron: str | None, interval: float | None, name: str,
          scheduler_timeout: float, collection: str | None) -> None:
    """Serve the build flow as a Prefect deployment on a schedule (runs until stopped).

    Point PREFECT_API_URL at a Prefect server first (see docs/operations.md); runs then
    appear in its UI. Without it, a temporary server lives as long as this command. Exits with
    an error if the server's scheduler does not schedule the first run within
    --scheduler-timeout seconds. At most one run at a time; overlapping ones are cancelled.
    """
    if (cron is None) == (interval is None):
        fail("give exactly one of --cron or --interval")
    _prefect_environment()
    api_url = os.environ.get("PREFECT_API_URL")
    if api_url and not prefect_server.answers(api_url):
        fail(f"no Prefect server answers at {api_url} (PREFECT_API_URL): start one with "
             "`prefect server start`, or unset PREFECT_API_URL to serve against a temporary server")
    if not api_url:
        click.echo("corpus: warning: PREFECT_API_URL is not set: serving against a temporary "
                   "server that lives only as long as this command", err=True)
        server = prefect_server.TemporaryServer(scheduler=True)
        server.start()
    from flows.run.flow import SchedulerNotRunning, serve as serve_deployment

    try:
        if not api_url:
            server.wait_ready(float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
        serve_deployment(str(raw_dir), str(wh.root), cron, interval, name, wh.catalog_url, collection,
                         check_seconds=scheduler_timeout, on_ready=click.echo)
    except (SchedulerNotRunning, prefect_server.ServerError) as exc:
        fail(str(exc))


@main.command()
@click.argument("query")
@warehouse_options
@format_option
@click.option("--at", "at", default=None, metavar="N|VERSION",
              help="Query as of snapshot N, or of the snapshot of release VERSION (e.g. 1.0.0).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write the result to FILE (.csv, .parquet, .json or .jsonl), outside the warehouse.")
def sql(query: str, wh: warehouse.Warehouse, fmt: str, at: str | None, output: Path | None) -> None:
    """Run read-only SQL QUERY on the warehouse tables: queries only (SELECT, DESCRIBE, SHOW,
    SUMMARIZE, EXPLAIN); statements that could change the warehouse are refused.

    Tables: documents, sentences, removed, edits, rejects, sources, runs.
    Example: corpus sql "SELECT lang, count(*) FROM sentences GROUP BY lang"
    """
    try:
        snapshot = _resolve_at(wh, at)
        # The latest snapshot's columns are what `corpus run` upgrades; an earlier one keeps its own.
        warn = _warn_if_outdated if snapshot is None else None
        if output is not None:
            written = warehouse.query_to_file(wh, query, output, snapshot, on_open=warn)
            click.echo(f"wrote {written} rows to {output}")
            return
        columns, rows = warehouse.query(wh, query, snapshot, on_open=warn)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    except Exception as exc:  # duckdb's errors carry a clear message of their own
        fail(f"SQL failed: {exc}")
    emit(columns, rows, fmt)


def _warn_if_outdated(con) -> None:
    if message := migrate.outdated(con):
        click.echo(message, err=True)


def _resolve_at(wh: warehouse.Warehouse, at: str | None) -> int | None:
    """--at N or --at VERSION -> a snapshot id (a clear error for anything else)."""
    if at is None:
        return None
    if at.isdigit():
        return int(at)
    from flows.release.folder import ReleaseError, parse_version, releases

    try:
        parse_version(at)
    except ReleaseError:
        raise warehouse.WarehouseError(f"--at takes a snapshot number or a release version, not {at!r}") from None
    for manifest in releases(wh.root / "releases"):
        if manifest["version"] == at:
            return int(manifest["snapshot_id"])
    raise warehouse.WarehouseError(f"no release {at} in {wh.root / 'releases'}")


@main.command()
@warehouse_options
@format_option
def versions(wh: warehouse.Warehouse, fmt: str) -> None:
    """List the warehouse's snapshots with the run that made each and its counts."""
    try:
        with wh.connect(read_only=True) as con:
            history = warehouse.snapshots(con)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    columns = list(dict.fromkeys(k for h in history for k in h))
    emit(columns, [tuple(h.get(c) for c in columns) for h in history], fmt)


@main.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--no-clean", is_flag=True, help="Segment the text as given: every line is a body block.")
@lang_detector_option
@click.option("--jsonl", is_flag=True,
              help='Input is JSON Lines of {"id": ..., "text": ...}; print {"id": ..., "sentences": [...]} per line.')
def split(source, no_clean: bool, jsonl: bool) -> None:
    """Clean, segment and detect the language of one text (FILE, or - for standard input).

    Prints one JSON object per sentence: start, end, section, text, lang, lang_prob. Offsets
    point into the cleaned text (into the text as given with --no-clean).
    """
    from flows.stages.document import split_text

    name = getattr(source, "name", "<stdin>")
    name = "<stdin>" if name in ("-", "<stdin>") else name
    try:
        # Bytes in, decoded here: offsets must count the text as given, \r\n included.
        content = source.read().decode("utf-8")
        if not jsonl:
            for sentence in split_text(content, clean_first=not no_clean):
                click.echo(json.dumps(sentence, ensure_ascii=False))
            return
        for number, line in enumerate(content.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record["text"]
                if not isinstance(text, str):
                    raise TypeError("text is not a string")
            except (ValueError, KeyError, TypeError) as exc:
                fail(f"{name}: line {number}: expected a JSON object with a string 'text' ({exc})")
            sentences = split_text(text, clean_first=not no_clean)
            click.echo(json.dumps({"id": record.get("id"), "sentences": sentences}, ensure_ascii=False))
    except UnicodeDecodeError as exc:
        fail(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})")


@main.command("diff")
@click.argument("old", type=int)
@click.argument("new", type=int)
@warehouse_options
@format_option
@click.option("--rows", is_flag=True, help="List the added/removed/changed rows, not just counts.")
def diff_command(old: int, new: int, wh: warehouse.Warehouse, fmt: str, rows: bool) -> None:
    """What changed between snapshots OLD and NEW: documents added/removed/changed, sentences
    added/removed (see `corpus versions` for snapshot ids)."""
    try:
        changes = warehouse.diff(wh, old, new)
    except warehouse.WarehouseError as exc:
        fail(str(exc))
    if rows:
        emit(["change", "id", "detail"],
             [(kind, key, detail) for kind, found in changes.items() for key, detail in found], fmt)
    else:
        emit(["change", "count"], [(kind, len(found)) for kind, found in changes.items()], fmt)


@main.command("release")
@click.argument("version")
@warehouse_options
@click.option("--at", "snapshot", type=int, default=None, help="Snapshot to release (default: the latest).")
def release_command(version: str, wh: warehouse.Warehouse, snapshot: int | None) -> None:
    """Export a snapshot as release VERSION (MAJOR.MINOR.PATCH) under <warehouse>/releases/.

    \b
    Version policy: major = the schema's major version changed; minor = documents added or
    removed, or columns added; patch = same documents, reprocessed. Existing versions and
    already released snapshots are refused; release folders are never overwritten.
    """
    from flows.release.folder import ReleaseError, release

    try:
        folder = release(wh, version, snapshot)
    except (ReleaseError, warehouse.WarehouseError) as exc:
        fail(str(exc))
    click.echo(f"released {version} at {folder}")


@main.command("verify")
@click.argument("location")
def verify_command(location: str) -> None:
    """Check a release folder or URL against its manifest.json and SHA256SUMS."""
    from flows.release.fetch import verify

    problems = verify(location)
    for problem in problems:
        click.echo(f"FAILED {problem}", err=True)
    if problems:
        fail(f"{location}: {len(problems)} problem(s)")
    click.echo(f"{location}: all files match their checksums")


@main.command("download")
@click.argument("base_url")
@click.argument("version")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--timeout", type=click.FloatRange(min=1), default=3600, show_default=True, metavar="SECONDS",
              help="Give up if the whole download takes longer.")
def download_command(base_url: str, version: str, dest: Path, timeout: float) -> None:
    """Fetch release VERSION from BASE_URL (the folder holding release folders) into
    DEST/VERSION, and verify it. Nothing is written outside DEST/VERSION, which appears only
    once every file has been checked."""
    from flows.release.fetch import download
    from flows.release.folder import ReleaseError

    try:
        target = download(base_url, version, dest, timeout)
    except (ReleaseError, OSError) as exc:
        fail(str(exc))
    click.echo(f"downloaded and verified {version} into {target}")


@main.command()
@format_option
@click.option("--rejects", is_flag=True, help="List the reject kinds (rejects.error_kind) instead.")
def rules(fmt: str, rejects: bool) -> None:
    """List the cleaning rules (dotted name and what each removes), or with --rejects the kinds
    of reject."""
    from flows.stages.rules import catalogue, reject_kinds

    if rejects:
        emit(["kind", "description"], sorted(reject_kinds().items()), fmt)
    else:
        emit(["rule", "description"], catalogue(), fmt)


for command in (desk.shell, desk.search_command, desk.kwic_command, desk.report_command):
    main.add_command(command)
