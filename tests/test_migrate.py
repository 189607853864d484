"""A warehouse written by schema 2.x code is upgraded by the next `corpus run`, whole."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows import schemas
from flows.interface.cli import main
from flows.warehouse import Warehouse, migrate
from tests.conftest import ROOT, corpus

OLD = ROOT / "tests" / "fixtures" / "schema-2.3.0"


@pytest.fixture
def old(tmp_path: Path) -> Path:
    """A private copy of the schema 2.3.0 warehouse and its raw folder (under a new path, so
    the warehouse is also found where it was not created)."""
    shutil.copytree(OLD, tmp_path / "old")
    return tmp_path / "old"


def rows(wh: Path, query: str) -> list[dict]:
    result = CliRunner().invoke(main, ["sql", "--warehouse", str(wh), "--format", "json", query])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_old_warehouse_needs_the_upgrade_and_readers_are_warned(old):
    with Warehouse(old / "warehouse").connect() as con:
        assert [u.from_major for u in migrate.pending(con)] == [2]
    result = CliRunner().invoke(main, ["sql", "--warehouse", str(old / "warehouse"), "SELECT count(*) AS n FROM sentences"])
    assert result.exit_code == 0
    assert "warning: this warehouse has schema 2.x, not 3.0.0" in result.output


def test_a_release_of_an_old_snapshot_is_refused_in_one_line(old):
    result = CliRunner().invoke(main, ["release", "1.0.0", "--warehouse", str(old / "warehouse")])
    assert result.exit_code == 1
    assert "does not have the columns of schema 3.0.0" in result.output
    assert "Traceback" not in result.output
    assert not (old / "warehouse" / "releases" / "1.0.0").exists()


def test_the_next_run_upgrades_every_table_in_one_snapshot_and_keeps_the_rows(old):
    wh = old / "warehouse"
    before = rows(wh, "SELECT doc_id AS page, version_id AS doc, count(*) AS n FROM sentences GROUP BY ALL ORDER BY ALL")
    output = corpus("run", str(old / "raw"), "--warehouse", str(wh))
    assert "upgraded warehouse" in output and "to 3.0.0 in one snapshot" in output

    with Warehouse(wh).connect() as con:
        assert migrate.pending(con) == []
        for name, contract in schemas.tables().items():
            columns = con.execute(f"SELECT column_name FROM duckdb_columns() WHERE database_name = 'lake' "
                                  f"AND table_name = '{name}' ORDER BY column_index").fetchall()
            assert [c for (c,) in columns] == contract.column_names, name
    assert rows(wh, "SELECT page_id AS page, doc_id AS doc, count(*) AS n FROM sentences GROUP BY ALL ORDER BY ALL") == before
    assert CliRunner().invoke(main, ["sql", "--warehouse", str(wh), "SELECT 1"]).stderr == ""
    (joined,) = rows(wh, "SELECT (SELECT count(*) FROM sentences) AS n, "
                         "(SELECT count(*) FROM sentences JOIN documents USING (doc_id)) AS joined")
    assert joined["n"] == joined["joined"] == sum(r["n"] for r in before)

    history = json.loads(corpus("versions", "--warehouse", str(wh), "--format", "json"))
    assert [h["data_changes"] for h in history][2] == "upgrade to schema 3.0.0"
    # Earlier snapshots keep their own column names.
    assert rows(wh, "SELECT count(DISTINCT version_id) AS n FROM documents AT (VERSION => 1)") == [{"n": 6}]
    # A second run finds nothing to upgrade and changes no data.
    assert "upgraded warehouse" not in corpus("run", str(old / "raw"), "--warehouse", str(wh))
    assert rows(wh, "SELECT count(*) AS n FROM sentences") == [{"n": joined["n"]}]


def test_a_failed_upgrade_changes_nothing_and_says_why_in_one_line(old, monkeypatch):
    bad = migrate.Upgrade(2, ("documents", "version_id"), migrate.UPGRADES[0].renames + (("documents", "nope", "x"),))
    monkeypatch.setattr(migrate, "UPGRADES", (bad,))
    wh = old / "warehouse"
    output = corpus("run", str(old / "raw"), "--warehouse", str(wh), expect=1)
    assert "cannot upgrade warehouse" in output and "(it is unchanged)" in output
    with Warehouse(wh).connect() as con:
        assert [u.from_major for u in migrate.pending(con)] == [2]
        assert "doc_id" in {r[0] for r in con.execute("DESCRIBE documents").fetchall()}
