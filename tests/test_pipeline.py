from pathlib import Path

from flows.ingest import inventory
from flows.pipeline import pipeline_version, plan_run, process_document, process_shard
from flows.records import DocMeta, RawFile, sha256_hex
from tests.conftest import SAMPLE


def _raw(path: str, data: bytes) -> RawFile:
    return RawFile(path, sha256_hex(data), len(data), DocMeta("src"))


def test_document_rows_satisfy_the_offsets_invariant():
    found = inventory(SAMPLE)
    sources = {s.source_id: s for s in found.sources}
    for raw in found.files:
        rows = process_document(raw, (SAMPLE / raw.raw_path).read_bytes(), sources[raw.meta.source_id])
        (document,) = rows.documents
        text = document["clean_text"]
        assert document["n_sentences"] == len(rows.sentences) > 0
        for sentence in rows.sentences:
            assert text[sentence["char_start"] : sentence["char_end"]] == sentence["text"]
            assert sentence["doc_id"] == document["doc_id"] == raw.doc_id


def test_same_bytes_give_identical_rows():
    data = (SAMPLE / "004_fe1d06e692c85b3f.txt").read_bytes()
    first = process_document(_raw("blog.txt", data), data)
    second = process_document(_raw("blog.txt", data), data)
    assert first == second
    assert len({s["sentence_id"] for s in first.sentences}) == len(first.sentences)


def test_a_reject_is_one_row_and_nothing_else():
    rows = process_document(_raw("empty.txt", b""), b"")
    assert (rows.documents, rows.sentences, rows.removed) == ([], [], [])
    assert rows.rejects[0]["error_kind"] == "empty"
    assert rows.rejects[0]["pipeline_version"] == pipeline_version()


def test_plan_compares_hashes_and_pipeline_version():
    a, b, c = _raw("a.txt", b"a"), _raw("b.txt", b"b"), _raw("c.txt", b"c")
    known = {
        "a.txt": (a.raw_sha256, pipeline_version()),
        "b.txt": (b.raw_sha256, "old-version"),
        "gone.txt": ("x", pipeline_version()),
    }
    plan = plan_run([a, b, c], known)
    assert [f.raw_path for f in plan.unchanged] == ["a.txt"]
    assert [f.raw_path for f in plan.changed] == ["b.txt"]
    assert [f.raw_path for f in plan.new] == ["c.txt"]
    assert plan.deleted == ["gone.txt"]
    assert [f.raw_path for f in plan.to_process] == ["b.txt", "c.txt"]


def test_process_shard_turns_a_vanished_file_into_a_reject(tmp_path: Path):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    (raw_dir / "ok.txt").write_text("A sentence that is fine.")
    ok = _raw("ok.txt", (raw_dir / "ok.txt").read_bytes())
    vanished = _raw("gone.txt", b"was here")
    result = process_shard(raw_dir, [ok, vanished], {}, {}, tmp_path / "staging", 1)
    assert result.counts == {"documents": 1, "sentences": 1, "removed": 0, "edits": 0, "line_index": 1, "rejects": 1}
    assert (tmp_path / "staging" / "rejects" / "shard-00001.parquet").exists()


def test_a_file_over_the_size_limit_is_rejected_without_being_read(tmp_path: Path):
    from flows.ingest import hash_file
    from flows.rules import rules

    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    huge = raw_dir / "huge.txt"
    with open(huge, "wb") as handle:  # sparse: takes no disk space, reads as zeros
        handle.truncate(rules()["decode"]["max_file_bytes"] + 1)
    sha, size = hash_file(huge)
    raw = RawFile("huge.txt", sha, size, DocMeta("src"))
    result = process_shard(raw_dir, [raw], {}, {}, tmp_path / "staging", 1)
    assert result.counts["rejects"] == 1 and result.counts["documents"] == 0
    import pyarrow.parquet as pq

    (row,) = pq.read_table(tmp_path / "staging" / "rejects" / "shard-00001.parquet").to_pylist()
    assert row["error_kind"] == "too_large"
    assert row["message"] == f"huge.txt: {size} bytes is over the size limit of {size - 1} bytes (rules.toml)"
    assert row["raw_sha256"] == sha


def test_automatic_shard_size_depends_only_on_the_number_of_files():
    from flows.pipeline import shard_size_for

    assert [shard_size_for(n) for n in (5, 2226, 17_610, 176_000, 10_000_000)] == [50, 50, 276, 1000, 1000]
    assert shard_size_for(176_000, 200) == 200
