"""Test isolation: Prefect state, DuckDB home and the warehouse never touch the user's."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "raw" / "sample"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_configure(config):
    home = Path(os.environ.get("CORPUS_TEST_HOME", "/tmp/corpus-test-home"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.pop("CORPUS_WAREHOUSE", None)


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A private copy of raw/sample that a test may add to or change."""
    raw = tmp_path / "raw"
    shutil.copytree(SAMPLE, raw)
    return raw


def corpus(*args: str, expect: int = 0) -> str:
    """Run a `corpus` command in-process; fail the test unless it exits with `expect`
    (3: a run that completed with rejects)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result.output
