"""Fault injection for the crash tests: `CORPUS_FAULT=<point>` kills the run with SIGKILL there,
`CORPUS_FAULT=full-disk:<point>` makes the write there fail as on a full disk (ENOSPC).

Points: `processing` (after the first shard is staged, others still to do), `staged` (all
shards staged, nothing published), `publish` (inside the publish transaction, rows inserted,
before COMMIT), and for full-disk also `staging` (writing a shard file). Unset in normal use;
a test-only hook, like a debugger breakpoint.
"""

from __future__ import annotations

import errno
import os
import signal


def fault_point(name: str) -> None:
    fault = os.environ.get("CORPUS_FAULT")
    if fault == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == f"full-disk:{name}":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"(simulated at {name})")
