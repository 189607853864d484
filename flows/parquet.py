"""Tables as Parquet files, read without a database: how often each value of a column occurs.

Takes Parquet files of one table (a run's staged shards, a release's data files); gives counts.
Shared by the run's report and the release's card, which import nothing of each other.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq


def column_counts(files: list[Path], column: str) -> Counter:
    """How often each value of `column` occurs in these Parquet files (None as "NULL")."""
    counts: Counter = Counter()
    for path in files:
        counts.update("NULL" if v is None else v for v in pq.read_table(path, columns=[column]).column(column).to_pylist())
    return counts
