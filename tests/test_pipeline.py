import json
from pathlib import Path

from flows.stages.ingest import inventory
from flows.stages.document import identity_url, process_file
from flows.stages.version import pipeline_version
from flows.run.shards import process_shard
from flows.stages.records import DocMeta, RawFile, sha256_hex, stable_id, document_id
from tests.conftest import SAMPLE, corpus


def _raw(path: str, data: bytes) -> RawFile:
    return RawFile(path, sha256_hex(data), len(data), DocMeta("src"))


def test_document_rows_satisfy_the_offsets_invariant():
    found = inventory(SAMPLE)
    sources = {s.source_id: s for s in found.sources}
    for raw in found.files:
        rows = process_file(raw, (SAMPLE / raw.raw_path).read_bytes(), sources[raw.meta.source_id])
        assert rows.documents and not rows.rejects
        (file_row,) = rows.files
        assert file_row["n_documents"] == len(rows.documents)
        for document in rows.documents:
            sentences = [s for s in rows.sentences if s["doc_id"] == document["doc_id"]]
            assert document["n_sentences"] == len(sentences) > 0
            assert document["doc_id"] == document_id(raw.raw_path, document["raw_record"])
            for sentence in sentences:
                assert document["clean_text"][sentence["char_start"] : sentence["char_end"]] == sentence["text"]
                assert sentence["page_id"] == document["page_id"]


def test_a_url_identifies_the_document_and_the_file_the_version():
    line = b'{"text": "Same page.", "url": "HTTPS://Example.org/p?utm_source=x&b=2&a=1#top"}\n'
    jsonl = process_file(_raw("feed.jsonl", line * 2), line * 2).documents
    html = b"<html><head><link rel='canonical' href='https://example.org/p?a=1&b=2'></head><body><p>Same page, but longer, so that trafilatura keeps it.</p></body></html>"
    (page,) = process_file(_raw("p.html", html), html).documents
    assert identity_url("HTTPS://Example.org/p?utm_source=x&b=2&a=1#top") == "https://example.org/p?a=1&b=2"
    assert [d["page_id"] for d in jsonl] == [page["page_id"]] * 2 == [stable_id("url", "https://example.org/p?a=1&b=2")] * 2
    assert [d["doc_id"] for d in jsonl + [page]] == [document_id("feed.jsonl", 1), document_id("feed.jsonl", 2), document_id("p.html")]
    text = b"No URL here."
    (plain,) = process_file(_raw("t.txt", text), text).documents
    assert plain["page_id"] == plain["doc_id"] == stable_id("path", "t.txt")


def test_sidecar_metadata_applies_to_one_document_files_only():
    meta = DocMeta("src", title="Sidecar title", url="https://example.org/sidecar")
    line = b'{"text": "A post.", "title": "Line title"}\n'
    (doc,) = process_file(RawFile("f.jsonl", sha256_hex(line), len(line), meta), line).documents
    assert (doc["title"], doc["url"]) == ("Line title", None)
    text = b"A post."
    (doc,) = process_file(RawFile("f.txt", sha256_hex(text), len(text), meta), text).documents
    assert (doc["title"], doc["url"]) == ("Sidecar title", "https://example.org/sidecar")


def test_a_file_with_rejected_lines_keeps_its_documents_and_counts_everything():
    data = b'{"text": "Kept."}\n[1]\n\n{"text": "Also kept."}\n'
    rows = process_file(_raw("f.jsonl", data), data)
    assert [d["raw_record"] for d in rows.documents] == [1, 4]
    assert [(r["raw_record"], r["raw_sha256"], r["raw_bytes"]) for r in rows.rejects] == [(2, sha256_hex(data), len(data))]
    assert rows.files == [{"raw_path": "f.jsonl", "raw_sha256": sha256_hex(data), "raw_bytes": len(data),
                           "format": "jsonl", "n_documents": 2, "n_rejects": 1, "n_skipped": 1,
                           "skipped": "blank line: 1", "pipeline_version": pipeline_version()}]


def test_same_bytes_give_identical_rows():
    data = (SAMPLE / "004_fe1d06e692c85b3f.txt").read_bytes()
    first = process_file(_raw("blog.txt", data), data)
    second = process_file(_raw("blog.txt", data), data)
    assert first == second
    assert len({s["sentence_id"] for s in first.sentences}) == len(first.sentences)


def test_a_reject_is_one_row_and_nothing_else():
    rows = process_file(_raw("empty.txt", b""), b"")
    assert (rows.documents, rows.sentences, rows.removed) == ([], [], [])
    assert rows.rejects[0]["error_kind"] == "empty"
    assert rows.rejects[0]["pipeline_version"] == pipeline_version()


def test_process_shard_turns_a_vanished_file_into_a_reject(tmp_path: Path):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    (raw_dir / "ok.txt").write_text("A sentence that is fine.")
    ok = _raw("ok.txt", (raw_dir / "ok.txt").read_bytes())
    vanished = _raw("gone.txt", b"was here")
    result = process_shard(raw_dir, [ok, vanished], {}, {}, tmp_path / "staging", 1)
    assert result.counts == {"documents": 1, "sentences": 1, "removed": 0, "edits": 0, "line_index": 1, "rejects": 1, "files": 2}
    assert (tmp_path / "staging" / "rejects" / "shard-00001.parquet").exists()


def test_a_file_over_the_size_limit_is_rejected_without_being_read(tmp_path: Path):
    from flows.stages.ingest import hash_file
    from flows.stages.rules import rules

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
    from flows.run.shards import shard_size_for

    assert [shard_size_for(n) for n in (5, 2226, 17_610, 176_000, 10_000_000)] == [200, 200, 276, 1000, 1000]
    assert shard_size_for(176_000, 200) == 200


def test_a_shard_staged_in_arrow_parts_equals_its_rows_sorted_at_once(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from flows.run import shards

    found = inventory(SAMPLE)
    sources = {s.source_id: s for s in found.sources}
    rows = shards.DocumentRows()
    for raw in found.files:
        rows.extend(process_file(raw, (SAMPLE / raw.raw_path).read_bytes(), sources[raw.meta.source_id]))
    whole = {name: shards.rows_to_table(name, getattr(rows, name)) for name in shards.DOCUMENT_TABLES}
    assert whole["sentences"].num_rows > 1000
    for every in (1, 3, 10_000):  # a part per file, a few parts, the whole shard in one
        monkeypatch.setattr(shards, "ARROW_EVERY_FILES", every)
        staging = tmp_path / str(every)
        shards.process_shard(SAMPLE, found.files, sources, {}, staging, 0)
        for name in shards.DOCUMENT_TABLES:
            assert pq.read_table(shards.shard_file(staging, name, 0)).equals(whole[name]), (every, name)


ARTICLE = [
    "Flood waters rise in the valley",
    "The river rose by two metres overnight, and older residents said they had not seen it this high since 1998.",
    "Engineers from the county council spent the morning checking the flood walls along the east bank.",
    "By noon the bridge was closed to traffic, and the school on the far side sent its pupils home early.",
    "The forecast for the weekend is no better, and residents near the river were asked to move valuables upstairs.",
    "A spokesman for the fire service said crews had pumped water out of more than forty homes since Tuesday.",
]
FOOTER = "Follow the Valley Courier on social media for the latest local news."


def test_versions_of_one_article_keep_every_sentence_and_a_shared_footer_still_goes(tmp_path):
    raw = tmp_path / "raw"
    (raw / "news").mkdir(parents=True)
    for n in range(1, 4):  # three scrapes of one article, each with a different last line
        (raw / "news" / f"flood-v{n}.txt").write_text("\n\n".join([*ARTICLE, f"Updated version {n} of this page.", FOOTER]))
    for name, lines in [("budget", ["Council sets its budget", "The council agreed a budget of four million pounds for the coming year on Monday.",
                                    "Councillors argued for three hours before the vote, which passed by twelve to nine."]),
                        ("fair", ["The summer fair returns", "The summer fair returns to the green on Saturday with music, food and a dog show.",
                                  "Organisers expect more than two thousand visitors if the weather holds."])]:
        (raw / "news" / f"{name}.txt").write_text("\n\n".join([*lines, FOOTER]))
    wh = tmp_path / "wh"
    corpus("run", str(raw), "--warehouse", str(wh))
    removed = corpus("sql", "--warehouse", str(wh), "--format", "csv",
                     "SELECT raw_path, rule, text FROM removed JOIN documents USING (doc_id) ORDER BY ALL")
    assert removed == "raw_path,rule,text\n" + "".join(
        f"news/{name}.txt,repeat.cross_document,{FOOTER}\n" for name in ["budget", "fair", "flood-v1", "flood-v2", "flood-v3"])
    for n in range(1, 4):
        (found,) = json.loads(corpus(
            "sql", "--warehouse", str(wh), "--format", "json",
            f"SELECT list(text ORDER BY char_start) AS t FROM sentences JOIN documents USING (doc_id) "
            f"WHERE raw_path = 'news/flood-v{n}.txt'"))
        assert found["t"] == [*ARTICLE, f"Updated version {n} of this page."]
