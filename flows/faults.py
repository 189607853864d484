"""Fault injection for the crash tests: `CORPUS_FAULT=<point>` kills the run with SIGKILL there.

Points: `processing` (after the first shard is staged, others still to do), `staged` (all
shards staged, nothing published), `publish` (inside the publish transaction, rows inserted,
before COMMIT). Unset in normal use; a test-only hook, like a debugger breakpoint.
"""

from __future__ import annotations

import os
import signal


def fault_point(name: str) -> None:
    if os.environ.get("CORPUS_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
