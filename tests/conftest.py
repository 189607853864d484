"""Test isolation: Prefect state, DuckDB home and the warehouse never touch the user's."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.interface.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "raw" / "sample"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_configure(config):
    # One home per pytest-xdist worker: each runs its own temporary Prefect servers.
    home = Path(os.environ.get("CORPUS_TEST_HOME", "/tmp/corpus-test-home")) / os.environ.get("PYTEST_XDIST_WORKER", "main")
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.pop("CORPUS_WAREHOUSE", None)
    # Runs work in the test process unless a test asks for worker processes (tests/test_workers):
    # spawning a pool re-imports the pipeline in every worker, for every run.
    os.environ["CORPUS_WORKERS"] = "1"


@pytest.fixture(scope="session", autouse=True)
def prefect_api():
    """One temporary Prefect server for the whole session (per xdist worker), used by in-process
    runs and, through PREFECT_API_URL, by the `corpus` processes tests start: each run would
    otherwise start and stop a server of its own, which costs more than the run itself."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()
        try:
            yield
        finally:
            os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A private copy of raw/sample that a test may add to or change."""
    raw = tmp_path / "raw"
    shutil.copytree(SAMPLE, raw)
    return raw


def fingerprint(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under root (the run lock aside): to show a
    command left a folder byte-identical."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".run.lock"}


def corpus(*args: str, expect: int = 0) -> str:
    """Run a `corpus` command in-process; fail the test unless it exits with `expect`
    (3: a run that completed with rejects)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result.output


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test PostgreSQL server, dropped afterwards.

    The server is $CORPUS_TEST_POSTGRES (a URL; `.ci/run` starts one with
    scripts/postgres-test-server). Without it the test is skipped, unless
    $CORPUS_REQUIRE_POSTGRES is set (as in CI), where it fails.
    """
    server = os.environ.get("CORPUS_TEST_POSTGRES")
    if not server:
        reason = "no test PostgreSQL server: set CORPUS_TEST_POSTGRES (see scripts/postgres-test-server)"
        if os.environ.get("CORPUS_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"corpus_{uuid.uuid4().hex[:12]}"
    _psql(server, f"CREATE DATABASE {name}")
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        _psql(server, f"DROP DATABASE {name} WITH (FORCE)")


def _psql(url: str, command: str) -> None:
    subprocess.run(["psql", url, "-qX", "-v", "ON_ERROR_STOP=1", "-c", command], check=True, capture_output=True)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory) -> Path:
    """raw/sample built once (per xdist worker) into a warehouse that tests only read: the
    sample build docs/cookbook.md shows."""
    wh = tmp_path_factory.mktemp("sample-build") / "wh"
    corpus("run", str(SAMPLE), "--warehouse", str(wh))
    return wh
