"""The search index: built from scratch, updated from an earlier snapshot's, rebuilt when stale."""

import tempfile
from pathlib import Path

import duckdb
import pytest

from flows.warehouse import publish
from flows.warehouse import search
from flows.warehouse import search_index
from flows import warehouse
from flows.stages.records import SourceInfo
from tests.test_search import _warehouse
from tests.test_warehouse import _row, _stage, memory_limit_as_duckdb_shows_it


def test_an_index_of_an_older_format_is_rebuilt(tmp_path):
    wh = _warehouse(tmp_path)
    path = search_index.build_index(wh, 1)
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE index_format")
    assert not search_index._is_current(path)
    assert len(search.search(wh, "river")[1]) == 2
    assert search_index._is_current(path)


def _index_contents(path: Path) -> tuple:
    with duckdb.connect(str(path), read_only=True) as con:
        return (
            con.execute("SELECT * FROM fts_main_sentences.stats").fetchall(),
            con.execute("SELECT term, df FROM fts_main_sentences.dict ORDER BY term").fetchall(),
            con.execute("SELECT name, len FROM fts_main_sentences.docs ORDER BY name").fetchall(),
            con.execute("SELECT d.name, w.term FROM fts_main_sentences.terms t JOIN fts_main_sentences.docs d USING (docid) "
                        "JOIN fts_main_sentences.dict w USING (termid) ORDER BY ALL").fetchall(),
            con.execute(f"SELECT {search_index._SENTENCE_COLUMNS} FROM sentences ORDER BY sentence_id").fetchall(),
        )


def _sentences_not_under_their_document_id(path: Path) -> int:
    """How many stored sentences lack a document of their id and name (a phrase lookup joins
    postings to sentences by that id), plus how many documents lack their sentence."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*) FROM sentences s FULL JOIN fts_main_sentences.docs d "
                           "ON d.docid = s.docid AND d.name = s.sentence_id WHERE s.docid IS NULL OR d.docid IS NULL").fetchone()[0]


def _postings_and_live_postings(path: Path) -> tuple[int, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT (SELECT count(*) FROM fts_main_sentences.terms), "
                           "(SELECT sum(len) FROM fts_main_sentences.docs)").fetchone()


@pytest.mark.parametrize("dead_share", [0.0, 1.0], ids=["dead-postings-rewritten", "dead-postings-kept"])
def test_an_updated_index_equals_a_fresh_one(tmp_path, monkeypatch, dead_share):
    monkeypatch.setattr(search_index, "DEAD_POSTINGS_SHARE", dead_share)
    wh = _warehouse(tmp_path)
    search_index.build_index(wh, 1)
    b_text = "A zeppelin over the river. The “mill” burned down."
    publish.publish(wh, _stage(tmp_path, "b.txt", b_text, shard=2), ["b.txt"], [SourceInfo("src")], _row("r2"))
    d_text = "The ferry left the mill at dawn."
    publish.publish(wh, _stage(tmp_path, "d.txt", d_text, shard=7), ["d.txt"], [SourceInfo("src")], _row("r2d"))
    search_index.build_index(wh, 3)
    publish.publish(wh, _stage(tmp_path, "a.txt", "The river flooded the old mill in April. Nobody came.", shard=3),
                    ["a.txt"], [SourceInfo("src")], _row("r3"))
    # c.txt comes and is replaced between the two indexed snapshots: its first rows never count.
    publish.publish(wh, _stage(tmp_path, "c.txt", "A blimp landed by the mill.", shard=4),
                    ["c.txt"], [SourceInfo("src")], _row("r4"))
    publish.publish(wh, _stage(tmp_path, "c.txt", "The mill stood still.", shard=5),
                    ["c.txt"], [SourceInfo("src")], _row("r5"))
    # b.txt reprocessed with the same result: its rows are deleted and inserted again, unchanged.
    publish.publish(wh, _stage(tmp_path, "b.txt", b_text, shard=6), ["b.txt"], [SourceInfo("src")], _row("r6"))
    # d.txt moves to another source: its sentences keep their ids, leave, and come in again.
    publish.publish(wh, _stage(tmp_path, "d.txt", d_text, shard=8, source="other"), ["d.txt"],
                    [SourceInfo("src"), SourceInfo("other")], _row("r8"))
    updated = search_index.build_index(wh, 8)
    assert not search_index.index_path(wh, 3).exists()
    assert search.search(wh, "ferry", source="other")[1]
    queries = ["river mill", "zeppelin", "flooded April", "nobody", "calm", "blimp", "still", "ferry"]
    by_update = [search.search(wh, q)[1] for q in queries] + [search.kwic(wh, "the river")]
    contents = _index_contents(updated)
    assert _sentences_not_under_their_document_id(updated) == 0
    postings, live = _postings_and_live_postings(updated)
    assert (postings > live) if dead_share == 1.0 else (postings == live)
    # Document ids are the lake's row ids, but for b.txt's sentences, which stayed as they were.
    b_ids = {row[0] for row in warehouse.query(wh, "SELECT sentence_id FROM sentences WHERE doc_id IN "
                                                   "(SELECT doc_id FROM documents WHERE raw_path = 'b.txt')")[1]}
    assert len(b_ids) == 2
    changed = [name for name, docid, rowid in _document_ids(wh, updated) if docid != rowid]
    assert sorted(changed) == sorted(b_ids)
    assert [row[1] for row in search.search(wh, "calm")[1]] == []  # snapshot 1's sentence is gone
    assert search.search(wh, "blimp")[1] == []
    search_index.build_index(wh, 8, incremental=False)
    assert [search.search(wh, q)[1] for q in queries] + [search.kwic(wh, "the river")] == by_update
    assert _index_contents(updated) == contents
    assert _sentences_not_under_their_document_id(updated) == 0
    assert all(docid == rowid for _, docid, rowid in _document_ids(wh, updated))
    postings, live = _postings_and_live_postings(updated)
    assert postings == live


def _document_ids(wh: warehouse.Warehouse, index: Path) -> list[tuple]:
    """(sentence id, its document id in the index, its row id in the lake) of every indexed sentence."""
    in_lake = dict(warehouse.query(wh, "SELECT sentence_id, rowid FROM sentences")[1])
    with duckdb.connect(str(index), read_only=True) as con:
        indexed = con.execute("SELECT name, docid FROM fts_main_sentences.docs").fetchall()
    return [(name, docid, in_lake[name]) for name, docid in indexed]


def test_an_index_whose_ids_the_lake_does_not_follow_is_built_afresh(tmp_path):
    wh = _warehouse(tmp_path)
    path = search_index.build_index(wh, 1)
    with duckdb.connect(str(path)) as con:  # ids above any the lake will give
        for table in ("sentences", "fts_main_sentences.docs", "fts_main_sentences.terms"):
            con.execute(f"UPDATE {table} SET docid = docid + 1000000")
    publish.publish(wh, _stage(tmp_path, "b.txt", "A zeppelin over the river.", shard=2), ["b.txt"],
                    [SourceInfo("src")], _row("r2"))
    updated = search_index.build_index(wh, 2)
    fresh = _index_contents(updated)
    assert all(docid == rowid for _, docid, rowid in _document_ids(wh, updated))
    assert _index_contents(search_index.build_index(wh, 2, incremental=False)) == fresh


def test_a_fresh_index_equals_the_one_duckdbs_create_fts_index_makes(tmp_path):
    wh = _warehouse(tmp_path)
    publish.publish(wh, _stage(tmp_path, "b.txt", "It was there. A naïve café served résumés; the café closed.", shard=2),
                    ["b.txt"], [SourceInfo("src")], _row("r2"))
    built = search_index.build_index(wh, 2, incremental=False)
    reference = tmp_path / "reference.duckdb"
    con = wh.connect(read_only=True)
    search_index._attach_index(con, reference, read_only=False)
    con.execute(f"ATTACH '{built}' AS built (READ_ONLY)")
    con.execute("CREATE TABLE sentences AS SELECT * EXCLUDE (docid) FROM built.sentences ORDER BY sentence_id")
    con.execute(f"PRAGMA create_fts_index('sentences', 'sentence_id', 'text', {search_index.INDEX_OPTIONS})")
    con.close()
    contents = _index_contents(built)
    assert contents == _index_contents(reference)
    assert _sentences_not_under_their_document_id(built) == 0
    stats, dictionary, docs = contents[:3]
    assert stats[0][0] == 6 and ("cafe", 1) in dictionary and sorted(length for _, length in docs)[0] == 0


def test_a_fresh_index_keeps_its_postings_in_term_order(tmp_path):
    path = search_index.build_index(_warehouse(tmp_path), 1)
    with duckdb.connect(str(path), read_only=True) as con:
        term_ids = [row[0] for row in con.execute("SELECT termid FROM fts_main_sentences.terms").fetchall()]
    assert len(term_ids) == 10 and term_ids == sorted(term_ids)


def test_an_index_whose_update_fails_is_built_afresh(tmp_path, monkeypatch):
    wh = _warehouse(tmp_path)
    search_index.build_index(wh, 1)
    publish.publish(wh, _stage(tmp_path, "b.txt", "A zeppelin over the river.", shard=2), ["b.txt"],
                    [SourceInfo("src")], _row("r2"))

    def no_change_feed(con, since, snapshot):
        raise duckdb.InvalidInputException(f"no changes recorded between snapshots {since} and {snapshot}")

    monkeypatch.setattr(search_index, "_read_changes", no_change_feed)

    path = search_index.build_index(wh, 2)
    assert [p.name for p in (wh.root / "search").iterdir()] == ["sentences-2.duckdb"]
    assert [row[1] for row in search.search(wh, "zeppelin")[1]] == ["A zeppelin over the river."]
    assert search_index._is_current(path)


def test_a_search_connection_is_capped_and_spills_outside_the_warehouse(tmp_path):
    wh = _warehouse(tmp_path)
    con, _ = search_index.index_connection(wh, None)
    try:
        limit, spill = con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    finally:
        con.close()
    assert limit == memory_limit_as_duckdb_shows_it()
    assert Path(spill).parent == Path(tempfile.gettempdir())


def test_an_index_whose_log_was_not_merged_is_never_installed_and_leaves_nothing(tmp_path, monkeypatch):
    """A checkpoint that fails (a full disk) leaves the tables in the write-ahead log: renaming
    the file alone would install an index without them."""
    wh = _warehouse(tmp_path)

    def write_without_checkpoint(wh, partial, snapshot, previous):
        with duckdb.connect(str(partial)) as con:
            con.execute("PRAGMA disable_checkpoint_on_shutdown")
            con.execute(f"CREATE TABLE index_format AS SELECT {search_index.INDEX_FORMAT} AS format")
        assert partial.with_name(partial.name + ".wal").exists()

    monkeypatch.setattr(search_index, "_write_index", write_without_checkpoint)
    with pytest.raises(warehouse.WarehouseError, match="was not written completely"):
        search_index.build_index(wh, 1)
    assert list((wh.root / "search").iterdir()) == []


def test_a_damaged_index_is_rebuilt_by_the_next_search(tmp_path):
    wh = _warehouse(tmp_path)
    path = search_index.build_index(wh, 1)
    path.write_bytes(b"not a database" * 100)
    assert len(search.search(wh, "river")[1]) == 2
    assert search_index._is_current(path)
