"""`corpus shell`: the real DuckDB CLI (duckdb-cli package) on the warehouse, read-only."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.interface import confine
from flows.interface.shell import duckdb_program
from tests.conftest import ROOT, corpus, fingerprint


def _shell(wh: Path, sql: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows", "shell", "--warehouse", str(wh), *args, "-csv"],
                          input=sql, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_a_piped_query_runs_in_the_duckdb_cli(sample_warehouse):
    result = _shell(sample_warehouse, "SELECT count(*) AS n FROM sentences;\nSELECT count(*) AS d FROM documents;")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["n", "1358", "d", "11"]


def test_duckdb_flags_that_look_like_ours_reach_duckdb(sample_warehouse):
    # -header starts with -h, which corpus's other commands take for --help.
    assert _shell(sample_warehouse, "SELECT 1 AS x;", "-noheader").stdout.split() == ["1"]
    assert _shell(sample_warehouse, "SELECT 1 AS x;", "-header").stdout.split() == ["x", "1"]


def test_the_shell_cannot_write(sample_warehouse):
    result = _shell(sample_warehouse, "DELETE FROM lake.sentences;")
    assert "read-only" in (result.stdout + result.stderr).lower()
    assert _shell(sample_warehouse, "SELECT count(*) FROM sentences;").stdout.split()[-1] == "1358"


def test_the_printed_init_script_works_with_duckdb_itself(sample_warehouse, tmp_path):
    init = tmp_path / "init.sql"
    init.write_text(corpus("shell", "--warehouse", str(sample_warehouse), "--print-init"))
    assert "ATTACH" in init.read_text() and "READ_ONLY" in init.read_text()
    result = subprocess.run([duckdb_program(), "-init", str(init), "-csv", "-c",
                             "SELECT count(*) AS n FROM documents WHERE is_latest"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.stdout.split() == ["n", "9"], result.stderr


def test_the_shell_reads_the_last_snapshot_while_a_run_is_writing(tmp_path):
    """A run is held inside its publish transaction (rows inserted, not committed): the shell
    sees the previous snapshot, then the new one once the run commits."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("The first file has one sentence.")
    wh = tmp_path / "wh"
    corpus("run", str(raw), "--warehouse", str(wh))
    (raw / "b.txt").write_text("The second file has another sentence. And a third one.")
    meet = tmp_path / "meet"
    writer = subprocess.Popen(
        [sys.executable, "-m", "flows", "run", str(raw), "--warehouse", str(wh)],
        env=dict(os.environ, CORPUS_FAULT=f"meet:publish:{meet}:2"), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (meet.exists() and any(meet.iterdir())):
            assert time.monotonic() < deadline and writer.poll() is None, "the run never reached publish"
            time.sleep(0.1)
        during = _shell(wh, "SELECT count(*) FROM sentences;")
        (meet / "test").touch()  # let the run commit
        assert writer.wait(timeout=120) == 0
    finally:
        writer.kill()
    assert during.returncode == 0, during.stderr
    assert during.stdout.split()[-1] == "1"
    assert _shell(wh, "SELECT count(*) FROM sentences;").stdout.split()[-1] == "3"


def test_at_opens_an_earlier_snapshot_and_bad_ones_are_clear_errors(sample_warehouse, tmp_path):
    assert "SNAPSHOT_VERSION 1" in corpus("shell", "--warehouse", str(sample_warehouse), "--at", "1", "--print-init")
    assert "no snapshot 7" in corpus("shell", "--warehouse", str(sample_warehouse), "--at", "7", expect=1)
    assert "no warehouse at" in corpus("shell", "--warehouse", str(tmp_path / "none"), expect=1)


@pytest.mark.skipif(not confine.abi_version(), reason="this kernel has no Landlock")
def test_the_shell_cannot_write_inside_the_warehouse_but_can_write_results_elsewhere(sample_warehouse, tmp_path):
    wh = tmp_path / "wh"
    shutil.copytree(sample_warehouse, wh, ignore=shutil.ignore_patterns("search", "staging"))
    before = fingerprint(wh)
    work = tmp_path / "work"
    work.mkdir()
    live = next((wh / "data" / "main" / "documents").glob("*.parquet"))
    attacks = [
        f"ATTACH 'ducklake:sqlite:{wh}/catalog.sqlite' AS w (DATA_PATH '{wh}/data/', OVERRIDE_DATA_PATH true); "
        "DELETE FROM w.sentences WHERE section = 'comment';",
        f"COPY (SELECT 'garbage' AS x) TO '{live}' (FORMAT parquet);",
        f"COPY (SELECT 1 AS x) TO '{wh}/data/main/new.csv';",
    ]
    for sql in attacks:
        result = subprocess.run([sys.executable, "-m", "flows", "shell", "--warehouse", str(wh), "-c", sql],
                                capture_output=True, text=True, timeout=120, cwd=work)
        assert "Permission denied" in result.stdout + result.stderr, (sql, result.stdout, result.stderr)
    assert fingerprint(wh) == before
    result = subprocess.run([sys.executable, "-m", "flows", "shell", "--warehouse", str(wh), "-c",
                             "COPY (SELECT count(*) AS n FROM sentences) TO 'out.csv';"],
                            capture_output=True, text=True, timeout=120, cwd=work)
    assert result.returncode == 0, result.stderr
    assert (work / "out.csv").read_text().split() == ["n", "1358"]


def test_only_folders_apart_from_the_warehouse_are_writable(tmp_path):
    wh, inside, apart = tmp_path / "p" / "wh", tmp_path / "p" / "wh" / "data", tmp_path / "q"
    for folder in (inside, apart):
        folder.mkdir(parents=True)
    assert confine.writable_roots(wh, [tmp_path / "p", inside, apart, tmp_path / "missing"]) == [apart]
