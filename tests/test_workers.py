"""A build with a process pool, or on a Dask cluster, gives exactly the rows of a build in one
process."""

import pytest

from tests.conftest import SAMPLE, corpus

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
    from flows import publish

    monkeypatch.setattr(publish, "INSERT_BYTES", 1)  # 3 shards: 3 INSERTs per table
    corpus("run", str(SAMPLE), "--warehouse", str(tmp_path / "wh"), "--workers", "1", "--shard-size", "2")
    assert _dump(tmp_path / "wh") == one_process


def test_the_workers_stop_before_publishing_and_publishing_and_the_index_each_get_a_fresh_process(tmp_path, monkeypatch):
    import multiprocessing

    from flows import build, publish

    children_at_publish, pool_calls = [], []
    real_publish, real_in_pool = publish.publish, build._in_pool

    def publish_counting_children(*args, **kwargs):
        children_at_publish.append(len(multiprocessing.active_children()))
        return real_publish(*args, **kwargs)

    def in_pool_noting_the_pool(function, *args):
        pool = build._pool
        pool_calls.append((function.__name__, pool._max_workers, pool._max_tasks_per_child) if pool else (function.__name__,))
        return real_in_pool(function, *args)

    monkeypatch.setattr(publish, "publish", publish_counting_children)
    monkeypatch.setattr(build, "_in_pool", in_pool_noting_the_pool)
    corpus("run", str(SAMPLE), "--warehouse", str(tmp_path / "wh"), "--workers", "2", "--shard-size", "2")
    assert children_at_publish == [0]
    assert ("process_planned_shard", 2, None) in pool_calls
    assert pool_calls[-2:] == [("_publish_once", 1, 1), ("build_index", 1, 1)]  # one process per task
    assert (tmp_path / "wh" / "search" / "sentences-1.duckdb").exists()


def test_a_fresh_process_is_neither_the_flow_s_nor_a_pool_worker(monkeypatch):
    import os
    from concurrent.futures import ProcessPoolExecutor

    from flows import build

    assert build._in_fresh_process(os.getpid) == os.getpid()  # no pool: the flow's own process
    pool = ProcessPoolExecutor(max_workers=2)
    try:
        workers = {pool.submit(os.getpid).result() for _ in range(4)}
        monkeypatch.setattr(build, "_pool", pool)
        fresh = build._in_fresh_process(os.getpid)
    finally:
        pool.shutdown()
    assert fresh != os.getpid() and fresh not in workers


def test_repeat_planning_runs_in_a_fresh_process_not_on_a_shard_worker(tmp_path, monkeypatch):
    from flows import build

    fresh_calls, pool_calls = [], []
    real_fresh, real_in_pool = build._in_fresh_process, build._in_pool

    def fresh_noting(function, *args):
        fresh_calls.append(function.__name__)
        return real_fresh(function, *args)

    def in_pool_noting(function, *args):
        pool_calls.append(function.__name__)
        return real_in_pool(function, *args)

    monkeypatch.setattr(build, "_in_fresh_process", fresh_noting)
    monkeypatch.setattr(build, "_in_pool", in_pool_noting)
    corpus("run", str(SAMPLE), "--warehouse", str(tmp_path / "wh"), "--workers", "2", "--shard-size", "2")
    assert fresh_calls == ["repeat_plan"] and "repeat_plan" not in pool_calls
    assert "fingerprint_shard" in pool_calls


def test_without_a_pool_the_shards_run_one_at_a_time_on_one_thread(tmp_path, monkeypatch):
    # Prefect runs submitted tasks in threads: in the run's own process (--workers 1), shards
    # running at once each held their rows and contended for the interpreter (100 MB: 2.57 GB
    # across the process tree, 4.3x slower than 2 workers), and shards run one at a time but
    # on Prefect's several threads still left the process at 1.71 GB; on one thread, 668 MB.
    import threading
    import time

    from flows import planning

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

    code = ("import threading; from flows import build; "
            "print(build._in_pool(build._in_pool, lambda: threading.current_thread().name))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "corpus-work_0"
