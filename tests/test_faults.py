"""Atomicity: a run killed with SIGKILL at any point leaves the warehouse at its previous
snapshot with no partial rows, and the next run reaches the rows of a run never killed."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flows.warehouse import Warehouse
from tests.conftest import SAMPLE, corpus

TABLES = ["documents", "sentences", "removed", "edits", "rejects", "files", "sources", "line_index"]


def snapshot_of(wh: Path) -> dict:
    """Everything a reader sees: snapshot ids and every table's rows."""
    state = {"snapshots": [v["snapshot_id"] for v in json.loads(corpus("versions", "--warehouse", str(wh), "--format", "json"))]}
    for table in TABLES:
        state[table] = corpus("sql", "--warehouse", str(wh), "--format", "csv", f"SELECT * FROM {table} ORDER BY ALL")
    return state


def orphans(wh: Path) -> list[str]:
    """Files under the data path that no snapshot references (DuckLake's own listing)."""
    con = Warehouse(wh).connect(read_only=False)
    try:
        rows = con.execute("CALL ducklake_delete_orphaned_files('lake', dry_run => true, cleanup_all => true)").fetchall()
    finally:
        con.close()
    return sorted(path for (path,) in rows)


def killed_run(raw: Path, wh: Path, point: str) -> int:
    env = dict(os.environ, CORPUS_FAULT=point)
    process = subprocess.Popen(
        [sys.executable, "-m", "flows", "run", str(raw), "--warehouse", str(wh), "--shard-size", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    code = process.wait(timeout=300)
    try:  # the dead run's temporary Prefect server would otherwise outlive it
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return code


@pytest.fixture(scope="module")
def raw_two_states(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    raw = tmp / "raw"
    raw.mkdir()
    for path in sorted(SAMPLE.glob("00[0-2]*")):
        (raw / path.name).write_bytes(path.read_bytes())
    return tmp, raw


def test_sigkill_at_any_point_keeps_the_previous_snapshot(raw_two_states):
    tmp, raw = raw_two_states
    wh = tmp / "wh"
    corpus("run", str(raw), "--warehouse", str(wh))
    before = snapshot_of(wh)

    # The second run has work to do: two new files and a changed one.
    for path in sorted(SAMPLE.glob("00[34]*")):
        (raw / path.name).write_bytes(path.read_bytes())
    (raw / "000_3c3aefae39a33739.txt").write_text("A changed article. It has two sentences.\n")

    for point in ["processing", "staged", "publish"]:
        assert killed_run(raw, wh, point) == -signal.SIGKILL, point
        assert snapshot_of(wh) == before, f"warehouse changed after a kill at {point}"
        assert any(Warehouse(wh).staging_for(None).iterdir()), "the dead run left its staging behind"
    assert orphans(wh), "the kill inside publish left data files that no snapshot references"

    corpus("run", str(raw), "--warehouse", str(wh))
    assert not any(Warehouse(wh).staging_for(None).iterdir()), "leftover staging was not cleaned"
    assert orphans(wh) == [], "the next run did not remove the dead run's data files"
    reference = tmp / "reference"
    corpus("run", str(raw), "--warehouse", str(reference))
    after, expected = snapshot_of(wh), snapshot_of(reference)
    for table in ["documents", "sentences", "removed", "edits", "rejects", "files", "sources"]:
        assert after[table] == expected[table], table
    assert after["snapshots"] == before["snapshots"] + [2]


def test_a_second_run_on_a_busy_warehouse_exits_with_a_clear_message(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("Some text.")
    wh = Warehouse(tmp_path / "wh")
    with wh.run_lock():
        result = subprocess.run([sys.executable, "-m", "flows", "run", str(raw), "--warehouse", str(wh.root)],
                                capture_output=True, text=True, timeout=120, start_new_session=True)
    assert result.returncode == 1
    assert "corpus: error: warehouse" in result.stderr and "is busy: a run is in progress" in result.stderr
    assert "Traceback" not in result.stderr
