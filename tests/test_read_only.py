"""`corpus sql` cannot change the warehouse, whatever the SQL: every file stays byte-identical."""

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from flows.interface.cli import main
from flows.warehouse import WarehouseError, check_read_only
from tests.conftest import fingerprint


@pytest.fixture
def wh(sample_warehouse, tmp_path) -> Path:
    copy = tmp_path / "wh"
    shutil.copytree(sample_warehouse, copy, ignore=shutil.ignore_patterns("search", "staging"))
    return copy


def hostile_statements(wh: Path) -> list[str]:
    live = next((wh / "data" / "main" / "documents").glob("*.parquet"))
    return [
        f"USE memory; DETACH lake; ATTACH 'ducklake:sqlite:{wh}/catalog.sqlite' AS w (DATA_PATH '{wh}/data/'); "
        "DELETE FROM w.sentences WHERE section = 'comment'",
        f"ATTACH 'ducklake:sqlite:{wh}/catalog.sqlite' AS w (DATA_PATH '{wh}/data/', OVERRIDE_DATA_PATH true)",
        f"COPY (SELECT 'garbage' AS x) TO '{live}' (FORMAT parquet)",
        f"EXPLAIN ANALYZE COPY (SELECT 'garbage' AS x) TO '{live}' (FORMAT parquet)",
        "DELETE FROM sentences",
        "/* SELECT */ DROP TABLE documents",
        "CALL ducklake_expire_snapshots('lake', older_than => now())",
        "SET allow_unsigned_extensions = true",
        "SELECT 1; INSERT INTO sources VALUES ('x', NULL, NULL, NULL, NULL)",
        f"EXPORT DATABASE '{wh}/data/export'",
        "CHECKPOINT",
    ]


def test_no_statement_that_could_write_runs_and_the_warehouse_is_byte_identical(wh):
    before = fingerprint(wh)
    for statement in hostile_statements(wh):
        result = CliRunner().invoke(main, ["sql", "--warehouse", str(wh), statement])
        assert result.exit_code == 1, (statement, result.output)
        assert "only queries run on the warehouse" in result.output and "Traceback" not in result.output
    assert fingerprint(wh) == before
    ok = CliRunner().invoke(main, ["sql", "--warehouse", str(wh), "--format", "csv",
                                   "SELECT count(*) AS n FROM sentences WHERE section = 'comment'"])
    assert ok.exit_code == 0 and ok.output.startswith("n\n") and int(ok.output.split()[1]) > 0


def test_queries_of_every_read_kind_still_run(wh):
    for statement in ["DESCRIBE sentences", "SHOW TABLES", "SUMMARIZE sources", "PRAGMA version",
                      "WITH s AS (FROM sentences) SELECT count(*) FROM s", "VALUES (1)",
                      "EXPLAIN SELECT 1", "EXPLAIN ANALYZE SELECT count(*) FROM documents"]:
        result = CliRunner().invoke(main, ["sql", "--warehouse", str(wh), statement])
        assert result.exit_code == 0, (statement, result.output)


def test_results_are_written_to_files_outside_the_warehouse_only(wh, tmp_path):
    before = fingerprint(wh)
    out = tmp_path / "sections.parquet"
    query = "SELECT section, count(*) AS n FROM sentences GROUP BY ALL ORDER BY ALL"
    result = CliRunner().invoke(main, ["sql", "--warehouse", str(wh), query, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).column_names == ["section", "n"]
    assert result.output == f"wrote {pq.read_table(out).num_rows} rows to {out}\n"
    inside = CliRunner().invoke(main, ["sql", "--warehouse", str(wh), query, "--output", str(wh / "data" / "x.csv")])
    assert inside.exit_code == 1 and "inside the warehouse" in inside.output
    assert fingerprint(wh) == before


@pytest.mark.parametrize("sql, refused", [
    ("SELECT 1", None), ("select 1; from t", None), ("EXPLAIN ANALYZE SELECT 1", None),
    ("COPY t TO 'x.csv'", "COPY"), ("EXPLAIN ANALYZE COPY t TO 'x'", "COPY"),
    ("LOAD sqlite_scanner", "LOAD"), ("USE memory", "SET"), ("DETACH lake", "DETACH"),
])
def test_check_read_only_names_the_kind_it_refuses(sql, refused):
    if refused is None:
        check_read_only(sql)
    else:
        with pytest.raises(WarehouseError, match=f"refused a {refused} statement"):
            check_read_only(sql)
