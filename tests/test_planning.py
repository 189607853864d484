from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from flows.stages import ingest
from flows.run import planning
from flows.run.shards import FILE_COLUMNS, FileRange, file_list_row
from flows.stages.version import pipeline_version
from flows.stages.records import DocMeta, RawFile, sha256_hex
from flows.warehouse import Warehouse, quote


def _raw(path: str, data: bytes, source: str = "src", title: str | None = None) -> RawFile:
    return RawFile(path, sha256_hex(data), len(data), DocMeta(source, title))


def _write_inventory(path: Path, files: list[RawFile]) -> str:
    with planning.parquet_rows(path, FILE_COLUMNS) as add:
        for raw in files:
            add(file_list_row(raw))
    return f"read_parquet({quote(str(path))})"


def _paths(path: Path) -> list[str]:
    return pq.read_table(path, columns=["raw_path"]).column(0).to_pylist()


def test_compare_decides_by_hash_and_pipeline_version(tmp_path):
    a, b, c = _raw("a.txt", b"a"), _raw("b.txt", b"b"), _raw("c.txt", b"c")
    con = duckdb.connect()
    con.execute("CREATE TABLE known (raw_path VARCHAR, raw_sha256 VARCHAR, pipeline_version VARCHAR)")
    con.executemany("INSERT INTO known VALUES (?, ?, ?)", [
        ["a.txt", a.raw_sha256, pipeline_version()],
        ["b.txt", b.raw_sha256, "old-version"],
        ["gone.txt", "x", pipeline_version()],
    ])
    found = _write_inventory(tmp_path / "inventory.parquet", [a, b, c])
    counts = planning.compare(con, found, "known", planning.PlanLists(tmp_path))
    assert counts == {"new": 1, "changed": 1, "unchanged": 1, "deleted": 1}
    assert _paths(tmp_path / "read.parquet") == ["b.txt", "c.txt"]
    assert pq.read_table(tmp_path / "read.parquet", columns=["seq"]).column(0).to_pylist() == [0, 1]
    assert _paths(tmp_path / "gone.parquet") == ["b.txt", "c.txt", "gone.txt"]
    assert _paths(tmp_path / "unchanged.parquet") == ["a.txt"]


def test_a_file_range_reads_back_its_files_and_names_their_sources(tmp_path):
    files = [_raw(f"{source}/{n}.txt", bytes([n]), source, title=f"T{n}")
             for n, source in enumerate(["x", "x", "y", "y", "z"])]
    con = duckdb.connect()
    con.execute("CREATE TABLE known (raw_path VARCHAR, raw_sha256 VARCHAR, pipeline_version VARCHAR)")
    planning.compare(con, _write_inventory(tmp_path / "inventory.parquet", files), "known", planning.PlanLists(tmp_path))
    ranges = planning.file_ranges(Warehouse(tmp_path / "wh"), tmp_path / "read.parquet", 5, None, shard_size=2)
    assert [(r.start, r.stop, r.source_ids) for r in ranges] == [(0, 2, ("x",)), (2, 4, ("y",)), (4, 5, ("z",))]
    assert [list(r) for r in ranges] == [files[0:2], files[2:4], files[4:5]]
    assert list(FileRange(tmp_path / "read.parquet", 1, 3, "coll"))[0].collection == "coll"


def test_add_context_processes_unchanged_files_whose_repeats_changed(tmp_path):
    files = [_raw(name, name.encode()) for name in ("a.txt", "b.txt", "c.txt")]
    con = duckdb.connect()
    con.execute("CREATE TABLE known AS SELECT * FROM (VALUES ('a.txt', ?, ?), ('b.txt', ?, ?), ('old.txt', 'x', ?)) "
                "t(raw_path, raw_sha256, pipeline_version)",
                [files[0].raw_sha256, pipeline_version(), files[1].raw_sha256, pipeline_version(), pipeline_version()])
    counts = planning.compare(con, _write_inventory(tmp_path / "inventory.parquet", files), "known", planning.PlanLists(tmp_path))
    assert counts == {"new": 1, "changed": 0, "unchanged": 2, "deleted": 1}
    plan = planning.RunPlan(planning.PlanLists(tmp_path), counts, [], [], True, ["sidecar.toml"])
    process_list, n_process, n_context = planning.add_context(Warehouse(tmp_path / "wh"), plan, ["b.txt"])
    assert (_paths(process_list), n_process, n_context) == (["b.txt", "c.txt"], 2, 1)
    assert _paths(tmp_path / "replace.parquet") == ["b.txt", "c.txt", "old.txt", "sidecar.toml"]


def test_sorted_cache_answers_along_a_walk_and_treats_a_broken_file_as_empty(tmp_path):
    path = tmp_path / "cache.parquet"
    with planning.parquet_rows(path, planning.CACHE_COLUMNS) as add:
        for raw_path in ["a", "b/c", "d"]:
            add((raw_path, f"entry of {raw_path}"))
    cache = planning.SortedCache(path)
    assert [cache.get(p) for p in ["a", "b", "b/c", "d", "e"]] == ["entry of a", None, "entry of b/c", "entry of d", None]
    assert planning.SortedCache(tmp_path / "missing.parquet").get("a") is None
    (tmp_path / "broken.parquet").write_text('{"a": "5 1 2 3 abab"}')  # the JSON cache of before
    assert planning.SortedCache(tmp_path / "broken.parquet").get("a") is None


def test_an_interrupted_list_leaves_no_file(tmp_path):
    path = tmp_path / "cache.parquet"
    try:
        with planning.parquet_rows(path, planning.CACHE_COLUMNS) as add:
            add(("a", "entry"))
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_second_plan_rereads_only_changed_files(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    (raw / "src").mkdir(parents=True)
    for name in ["a.txt", "b.txt", "c.txt"]:
        (raw / "src" / name).write_text(f"text of {name}")
    wh = Warehouse(tmp_path / "wh")
    first = planning.plan(raw, wh, None, tmp_path / "plan1")
    assert first.counts == {"new": 3, "changed": 0, "unchanged": 0, "deleted": 0, "files": 3}
    assert [s.source_id for s in first.sources] == ["src"]
    (raw / "src" / "b.txt").write_text("TEXT OF b.txt")  # same size, new bytes: the stat key changes
    read: list[str] = []
    real_hash = ingest.hash_file
    monkeypatch.setattr(ingest, "hash_file", lambda path: read.append(path.name) or real_hash(path))
    second = planning.plan(raw, wh, None, tmp_path / "plan2")
    assert read == ["b.txt"]
    files = {f.raw_path: f for f in FileRange(second.lists.read, 0, 3)}
    assert files["src/b.txt"].raw_sha256 == sha256_hex(b"TEXT OF b.txt")
    assert pq.read_table(wh.hash_cache_path(), columns=["raw_path"]).column(0).to_pylist() == \
        ["src/a.txt", "src/b.txt", "src/c.txt"]
