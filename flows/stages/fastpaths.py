"""The switch for fast paths: shortcuts that skip work which cannot change a result.

On by default. Each fast path (skip ftfy where no fix can apply, skip the glued-word search on
short tokens and known words, one sentence for a block with no possible boundary, no language detection
where the parent language clearly holds) has a slow path
giving the same rows; tests and benchmarks turn the fast paths off to compare both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_enabled = True


def enabled() -> bool:
    return _enabled


@contextmanager
def disabled() -> Iterator[None]:
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous
