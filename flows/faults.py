"""Fault injection for the crash tests: `CORPUS_FAULT=<point>` kills the run with SIGKILL there
(its whole process group: the flow's process and the worker processes, wherever the point is),
`CORPUS_FAULT=full-disk:<point>` makes the write there fail as on a full disk (ENOSPC).

Points: `processing` (after the first shard is staged, others still to do), `staged` (all
shards staged, nothing published), `publish` (inside the publish transaction, rows inserted,
before COMMIT), and for full-disk also `staging` (writing a shard file).
`CORPUS_FAULT=meet:<point>:<folder>:<n>` makes each process wait at the point until n processes
have arrived there (a file each in <folder>), at most a minute: writers then hold their publish
transactions open side by side, so the race between their commits is certain.
Unset in normal use; a test-only hook, like a debugger breakpoint.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path


def fault_point(name: str) -> None:
    fault = os.environ.get("CORPUS_FAULT", "")
    if fault == name:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    if fault == f"full-disk:{name}":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"(simulated at {name})")
    if fault.startswith(f"meet:{name}:"):
        folder, expected = fault.removeprefix(f"meet:{name}:").rsplit(":", 1)
        _meet(Path(folder), int(expected))


def _meet(folder: Path, expected: int, timeout: float = 60.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + timeout
    while len(list(folder.iterdir())) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
