"""Where a run's CPU work runs: a pool of spawned worker processes, or one thread of its own.

Takes plain functions of the stages and the warehouse with their arguments; gives their
results. Prefect tasks stay thin: each asks `current()` to run its work. Workers are spawned,
so they import only the modules the work needs (never Prefect, so they start no Prefect server).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager

WORK_THREAD = "corpus-work"


def _end_with_parent() -> None:
    """In each worker, first: a thread that ends the worker as soon as the run's process is
    gone, however it ended (SIGKILL, the OOM killer: no exit hook runs). It waits on the
    parent's sentinel, which the kernel closes when the parent dies; prctl's PDEATHSIG, which
    ends the temporary Prefect server, would fire when the *thread* that spawned the worker
    ends, and pools spawn from Prefect's short-lived task threads."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="corpus-parent-watch", daemon=True).start()


def _spawn_pool(workers: int, max_tasks_per_child: int | None = None) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               max_tasks_per_child=max_tasks_per_child, initializer=_end_with_parent)


class Executor:
    """Runs a run's work: in `workers` spawned processes when there are two or more, else on
    one thread of this process, one call at a time.

    Prefect runs submitted tasks in threads: work run on those threads would run every shard
    in flight at once, each holding its rows, so in-process work goes to one thread of its own.
    """

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool = _spawn_pool(workers) if workers > 1 else None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=WORK_THREAD) if workers <= 1 else None
        self.mode = "pool" if self._pool else "thread"

    def run(self, function, *args):
        """`function(*args)` where this executor runs work; its result (or its exception)."""
        if self._pool is not None:
            return self._pool.submit(function, *args).result()
        if threading.current_thread().name.startswith(WORK_THREAD):  # called from the work itself
            return function(*args)
        return self._thread.submit(function, *args).result()

    def run_fresh(self, function, *args):
        """`function(*args)` in a process started for it alone (in-process without a pool): for a
        step whose peak would otherwise come on top of what a shard worker holds."""
        if self._pool is None:
            return self.run(function, *args)
        with _spawn_pool(1) as fresh:
            return fresh.submit(function, *args).result()

    def release_workers(self) -> None:
        """Once the shards are processed, swap the workers for a pool that runs each later task
        (publishing, the search index build) in a fresh process: idle workers would hold their
        models through both, and those steps' peaks would add to what the run left behind."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = _spawn_pool(1, max_tasks_per_child=1)
            self.mode = "fresh-per-task"

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._thread is not None:
            self._thread.shutdown(wait=False)


_current: Executor | None = None


def current() -> Executor:
    """The executor of the run in progress in this process; one thread of this process where
    none is set (a Dask worker, or a task called on its own)."""
    global _current
    if _current is None:
        _current = Executor(1)
    return _current


@contextmanager
def using(executor: Executor) -> Iterator[Executor]:
    """Make `executor` this process's current one for the block, then shut it down."""
    global _current
    previous, _current = _current, executor
    try:
        yield executor
    finally:
        _current = previous
        executor.shutdown()
