"""A build with a process pool gives exactly the rows of a build in one process."""

from tests.conftest import SAMPLE, corpus

TABLES = ["documents", "sentences", "removed", "edits", "rejects", "line_index"]


def test_two_workers_give_the_same_rows_as_one(tmp_path):
    dumps = {}
    for workers in ("1", "2"):
        wh = tmp_path / f"wh{workers}"
        corpus("run", str(SAMPLE), "--warehouse", str(wh), "--workers", workers, "--shard-size", "2")
        dumps[workers] = [corpus("sql", "--warehouse", str(wh), "--format", "csv", f"SELECT * FROM {t} ORDER BY ALL")
                          for t in TABLES]
    assert dumps["1"] == dumps["2"]
