from pathlib import Path

import duckdb
import pytest

from flows.warehouse import publish
from flows import schemas
from flows.warehouse import state
from flows import warehouse
from flows.run.shards import process_shard
from flows.stages.records import DocMeta, RawFile, SourceInfo, sha256_hex
from flows.warehouse import Warehouse, WarehouseError

RUN_ROW = {
    "run_id": "r1", "started_at": None, "finished_at": None, "code_version": "0", "pipeline_version": "p",
    "schema_version": "1", "raw_dir": "raw", "n_files": 1, "n_new": 1, "n_changed": 0,
    "n_context_changed": 0, "n_unchanged": 0, "n_deleted": 0, "n_rejected": 0, "n_documents": 1, "n_sentences": 2,
    "n_removed": 0, "seconds": 0.0, "stage_seconds": {}, "lang_detector": "fasttext",
}


def _stage(tmp_path: Path, name: str, text: str, shard: int = 1, source: str = "src"):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir(exist_ok=True)
    (raw_dir / name).write_text(text)
    data = (raw_dir / name).read_bytes()
    raw = RawFile(name, sha256_hex(data), len(data), DocMeta(source))
    staging = tmp_path / f"staging{shard}"
    process_shard(raw_dir, [raw], {}, {}, staging, shard)
    return {t: sorted((staging / t).glob("*.parquet")) for t in ("documents", "sentences", "removed", "edits", "line_index", "rejects", "files")}


def _row(run_id):
    from datetime import datetime
    now = datetime(2026, 1, 1)
    return dict(RUN_ROW, run_id=run_id, started_at=now, finished_at=now)


def test_publish_commits_one_snapshot_and_replaces_changed_documents(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    staged = _stage(tmp_path, "a.txt", "First sentence here. Second one here.")
    sources = [SourceInfo("src", "A Source")]
    assert publish.publish(wh, staged, ["a.txt"], sources, _row("r1")) == 1
    staged = _stage(tmp_path, "a.txt", "Only one sentence now.", shard=2)
    assert publish.publish(wh, staged, ["a.txt"], sources, _row("r2")) == 2

    assert warehouse.query(wh, "SELECT text FROM sentences")[1] == [("Only one sentence now.",)]
    assert warehouse.query(wh, "SELECT count(*) FROM sentences", snapshot=1)[1] == [(2,)]
    con = wh.connect()
    try:
        history = warehouse.snapshots(con)
        state.known_files(con, "known")
        files = con.execute("SELECT raw_path FROM known").fetchall()
    finally:
        con.close()
    assert [(h["snapshot_id"], h["run_id"], h["data_changes"]) for h in history][1:] == [
        (1, "r1", "documents, files, sentences, sources"), (2, "r2", "documents, files, sentences"),
    ]
    con = wh.connect()
    try:
        messages = con.execute("SELECT commit_message FROM lake.snapshots() ORDER BY snapshot_id").fetchall()
    finally:
        con.close()
    assert messages[1:] == [("run r1",), ("run r2",)]
    assert files == [("a.txt",)]


def test_staged_shards_are_inserted_in_runs_of_at_most_the_byte_budget(tmp_path):
    files = []
    for name, size in [("a", 5), ("b", 5), ("c", 5), ("d", 20), ("e", 1)]:
        (tmp_path / name).write_bytes(b"x" * size)
        files.append(tmp_path / name)
    a, b, c, d, e = files
    assert publish._batches(files, 10) == [[a, b], [c], [d], [e]]  # d, over the budget, alone
    assert publish._batches(files, 100) == [files]
    assert publish._batches([], 10) == []


def test_schema_mismatch_fails_before_anything_is_committed(tmp_path, monkeypatch):
    wh = Warehouse(tmp_path / "wh")
    staged = _stage(tmp_path, "a.txt", "A sentence.")
    publish.publish(wh, staged, ["a.txt"], [SourceInfo("src")], _row("r1"))
    contract = schemas.table("sources")
    renamed = schemas.Column("label", "string", True, "renamed column")
    changed = schemas.TableSchema("sources", contract.description, (contract.columns[0], renamed),
                                  contract.sort_by)
    monkeypatch.setitem(schemas.tables(), "sources", changed)
    with pytest.raises(schemas.SchemaError, match="warehouse table sources has columns"):
        publish.publish(wh, staged, ["a.txt"], [SourceInfo("src")], _row("r2"))
    monkeypatch.undo()
    con = wh.connect()
    try:
        assert [h["snapshot_id"] for h in warehouse.snapshots(con)] == [0, 1]
    finally:
        con.close()


def test_a_nullable_column_a_minor_schema_version_appends_is_added_in_the_run(tmp_path, monkeypatch):
    wh = Warehouse(tmp_path / "wh")
    contract = schemas.table("sources")
    appended = schemas.Column("homepage_title", "string", True, "a column the next minor version adds")
    publish.publish(wh, _stage(tmp_path, "a.txt", "A sentence."), ["a.txt"], [SourceInfo("src")], _row("r1"))
    monkeypatch.setitem(schemas.tables(), "sources", schemas.TableSchema(
        "sources", contract.description, (*contract.columns, appended), contract.sort_by))
    publish.publish(wh, _stage(tmp_path, "b.txt", "Another sentence.", shard=2), ["b.txt"], [SourceInfo("src")], _row("r2"))
    columns, rows = warehouse.query(wh, "SELECT source_id, homepage_title FROM sources")
    assert (columns, rows) == (["source_id", "homepage_title"], [("src", None)])
    columns, rows = warehouse.query(wh, "SELECT * FROM sources", 1)  # the snapshot before keeps its columns
    assert "homepage_title" not in columns


def test_reading_a_missing_warehouse_is_a_clear_error(tmp_path):
    with pytest.raises(WarehouseError, match="no warehouse at"):
        Warehouse(tmp_path / "none").connect()


def test_second_run_lock_is_refused(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    with wh.run_lock():
        with pytest.raises(WarehouseError, match="is busy: a run is in progress"):
            with Warehouse(tmp_path / "wh").run_lock():
                pass


def test_a_connection_loads_its_extensions_and_then_requires_signatures_again(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    publish.publish(wh, _stage(tmp_path, "a.txt", "One sentence here."), ["a.txt"], [SourceInfo("src")], _row("r1"))
    with wh.connect() as con:
        loaded = {name for (name,) in con.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
        assert {"ducklake", "sqlite_scanner", "fts"} <= loaded
        assert con.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone() == (False,)


def memory_limit_as_duckdb_shows_it(limit: str = warehouse.MEMORY_LIMIT) -> str:
    """`current_setting('memory_limit')` after `SET memory_limit = limit` (DuckDB reformats it)."""
    with duckdb.connect() as con:
        con.execute(f"SET memory_limit = '{limit}'")
        return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_a_writing_connection_is_capped_and_keeps_no_file_cache(tmp_path):
    con = Warehouse(tmp_path / "wh").connect(read_only=False)
    try:
        limit, file_cache = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('enable_external_file_cache')"
        ).fetchone()
    finally:
        con.close()
    assert (limit, file_cache) == (memory_limit_as_duckdb_shows_it(), False)


def test_a_warehouse_made_by_a_relative_path_is_read_from_anywhere_and_after_a_move(tmp_path, monkeypatch):
    """DuckLake stores the data path it was created with (here relative to the directory of
    the first run): the warehouse folder's own data path is used instead."""
    monkeypatch.chdir(tmp_path)
    publish.publish(Warehouse(Path("wh")), _stage(tmp_path, "a.txt", "First sentence here. Second one here."),
                    [], [SourceInfo("src")], _row("r1"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    query = "SELECT text FROM sentences ORDER BY char_start"
    expected = warehouse.query(Warehouse(tmp_path / "wh"), query)
    assert expected[1] == [("First sentence here.",), ("Second one here.",)]
    (tmp_path / "wh").rename(tmp_path / "moved")
    assert warehouse.query(Warehouse(tmp_path / "moved"), query) == expected
