"""A build with a process pool, or on a Dask cluster, gives exactly the rows of a build in one
process."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import ROOT, SAMPLE, corpus

TABLES = ["documents", "sentences", "removed", "edits", "rejects", "files", "line_index"]


def _dump(wh) -> list[str]:
    return [corpus("sql", "--warehouse", str(wh), "--format", "csv", f"SELECT * FROM {t} ORDER BY ALL")
            for t in TABLES]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> list[str]:
    wh = tmp_path_factory.mktemp("one") / "wh"
    corpus("run", str(SAMPLE), "--warehouse", str(wh), "--workers", "1", "--shard-size", "2")
    return _dump(wh)


def test_two_workers_give_the_same_rows_as_one(tmp_path, one_process):
    corpus("run", str(SAMPLE), "--warehouse", str(tmp_path / "wh"), "--workers", "2", "--shard-size", "2")
    assert _dump(tmp_path / "wh") == one_process


def test_a_dask_local_cluster_of_two_workers_gives_the_same_rows(tmp_path, one_process):
    output = corpus("run", str(SAMPLE), "--warehouse", str(tmp_path / "wh"), "--dask", "local",
                    "--workers", "2", "--shard-size", "2")
    assert "committed snapshot 1" in output
    assert _dump(tmp_path / "wh") == one_process
    assert "1358" in corpus("sql", "--warehouse", str(tmp_path / "wh"), "SELECT count(*) FROM sentences")


def test_publishing_shards_in_several_inserts_gives_the_same_rows(tmp_path, one_process, monkeypatch):
    from flows.warehouse import publish

    monkeypatch.setattr(publish, "INSERT_BYTES", 1)  # 3 shards: 3 INSERTs per table
    corpus("run", str(SAMPLE), "--warehouse", str(tmp_path / "wh"), "--workers", "1", "--shard-size", "2")
    assert _dump(tmp_path / "wh") == one_process


def test_the_workers_stop_before_publishing_and_publishing_and_the_index_each_get_a_fresh_process(tmp_path, monkeypatch):
    import multiprocessing

    from flows.run import executors
    from flows.warehouse import publish

    children_at_publish, calls = [], []
    real_publish, real_run = publish.publish, executors.Executor.run

    def publish_counting_children(*args, **kwargs):
        children_at_publish.append(len(multiprocessing.active_children()))
        return real_publish(*args, **kwargs)

    def run_noting_where(self, function, *args):
        calls.append((function.__name__, self.mode, self.workers))
        return real_run(self, function, *args)

    monkeypatch.setattr(publish, "publish", publish_counting_children)
    monkeypatch.setattr(executors.Executor, "run", run_noting_where)
    corpus("run", str(SAMPLE), "--warehouse", str(tmp_path / "wh"), "--workers", "2", "--shard-size", "2")
    assert children_at_publish == [0]
    assert ("process_planned_shard", "pool", 2) in calls
    assert calls[-2:] == [("_publish_once", "fresh-per-task", 2), ("build_index", "fresh-per-task", 2)]
    assert (tmp_path / "wh" / "search" / "sentences-1.duckdb").exists()


def test_a_fresh_process_is_neither_the_flow_s_nor_a_pool_worker():
    import os

    from flows.run.executors import Executor

    in_process = Executor(1)
    try:
        assert in_process.run_fresh(os.getpid) == os.getpid()  # no pool: the flow's own process
    finally:
        in_process.shutdown()
    pool = Executor(2)
    try:
        workers = {pool.run(os.getpid) for _ in range(4)}
        fresh = pool.run_fresh(os.getpid)
    finally:
        pool.shutdown()
    assert fresh != os.getpid() and fresh not in workers


def test_repeat_planning_runs_in_a_fresh_process_not_on_a_shard_worker(tmp_path, monkeypatch):
    from flows.run import executors

    fresh_calls, pool_calls = [], []
    real_fresh, real_run = executors.Executor.run_fresh, executors.Executor.run

    def fresh_noting(self, function, *args):
        fresh_calls.append(function.__name__)
        return real_fresh(self, function, *args)

    def run_noting(self, function, *args):
        pool_calls.append(function.__name__)
        return real_run(self, function, *args)

    monkeypatch.setattr(executors.Executor, "run_fresh", fresh_noting)
    monkeypatch.setattr(executors.Executor, "run", run_noting)
    corpus("run", str(SAMPLE), "--warehouse", str(tmp_path / "wh"), "--workers", "2", "--shard-size", "2")
    assert fresh_calls == ["repeat_plan"] and "repeat_plan" not in pool_calls
    assert "fingerprint_shard" in pool_calls


def test_without_a_pool_the_shards_run_one_at_a_time_on_one_thread(tmp_path, monkeypatch):
    # Prefect runs submitted tasks in threads: in the run's own process (--workers 1), shards
    # running at once would each hold their rows and contend for the interpreter.
    import threading
    import time

    from flows.run import planning

    running, most, threads = set(), [], set()
    lock, real = threading.Lock(), planning.process_planned_shard

    def noting_overlap(*args):
        with lock:
            running.add(threading.get_ident())
            most.append(len(running))
            threads.add(threading.get_ident())
        time.sleep(0.2)
        try:
            return real(*args)
        finally:
            with lock:
                running.discard(threading.get_ident())

    monkeypatch.setattr(planning, "process_planned_shard", noting_overlap)
    corpus("run", str(SAMPLE), "--warehouse", str(tmp_path / "wh"), "--workers", "1", "--shard-size", "2")
    assert len(most) == 4 and max(most) == 1 and len(threads) == 1


def test_without_a_pool_work_that_calls_in_pool_itself_runs_on_the_work_thread():
    # In a process of its own: a deadlock there times out and fails the test; in this one, its
    # stuck thread would hang pytest's exit.
    import subprocess
    import sys

    code = ("import threading; from flows.run.executors import Executor; work = Executor(1); "
            "print(work.run(work.run, lambda: threading.current_thread().name)); work.shutdown()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "corpus-work_0"


def test_pool_workers_end_when_the_run_s_process_is_killed_alone(tmp_path):
    """kill -9 of the run's process only (as a scheduler or the OOM killer does): its workers
    do not outlive it."""
    meet = tmp_path / "meet"
    process = subprocess.Popen(
        [sys.executable, "-m", "flows", "run", str(SAMPLE), "--warehouse", str(tmp_path / "wh"),
         "--workers", "2", "--shard-size", "2"],
        env=dict(os.environ, CORPUS_FAULT=f"meet:processing:{meet}:99"), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (meet.exists() and any(meet.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = [child for child in psutil.Process(process.pid).children()
                   if "multiprocessing" in " ".join(child.cmdline())]
        assert len(workers) >= 2, "the run did not reach its processing with a pool"
        process.kill()
        process.wait(timeout=30)
        _, alive = psutil.wait_procs(workers, timeout=20)
        assert alive == [], f"{len(alive)} workers outlived the run"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
