"""Full-text search (BM25 over the sentences) and keyword in context."""

import csv
import io
import json
from pathlib import Path

from flows.warehouse import publish
from flows.warehouse import search
from flows.stages.records import SourceInfo
from flows.warehouse import Warehouse
from tests.conftest import corpus
from tests.test_warehouse import _row, _stage

TEXT = ("The river flooded the old mill in March. The river was calm in May. "
        "An old barn stood by the road. Nobody mentioned anything else.")


def _warehouse(tmp_path: Path) -> Warehouse:
    wh = Warehouse(tmp_path / "wh")
    publish.publish(wh, _stage(tmp_path, "a.txt", TEXT), ["a.txt"], [SourceInfo("src")], _row("r1"))
    return wh


def test_a_sentence_with_all_the_words_ranks_above_one_with_one(tmp_path):
    wh = _warehouse(tmp_path)
    columns, rows = search.search(wh, "river mill")
    texts = [row[columns.index("text")] for row in rows]
    assert texts == ["The river flooded the old mill in March.", "The river was calm in May."]
    scores = [row[0] for row in rows]
    assert scores[0] > scores[1]


def test_stemming_and_case_are_ignored_and_unknown_words_find_nothing(tmp_path):
    wh = _warehouse(tmp_path)
    _, rows = search.search(wh, "FLOODING Rivers")
    assert rows[0][1] == "The river flooded the old mill in March."
    assert search.search(wh, "zeppelin")[1] == []


def test_filters_limit_and_the_index_belongs_to_its_snapshot(tmp_path):
    wh = _warehouse(tmp_path)
    assert search.search(wh, "river", source="other")[1] == []
    assert len(search.search(wh, "river", limit=1)[1]) == 1
    assert [p.name for p in (wh.root / "search").iterdir()] == ["sentences-1.duckdb"]
    publish.publish(wh, _stage(tmp_path, "a.txt", "A zeppelin over the river.", shard=2), ["a.txt"],
                      [SourceInfo("src")], _row("r2"))
    assert [r[1] for r in search.search(wh, "zeppelin")[1]] == ["A zeppelin over the river."]
    assert [p.name for p in (wh.root / "search").iterdir()] == ["sentences-2.duckdb"]  # the old one went
    assert search.search(wh, "zeppelin", at=1)[1] == []  # built in memory for snapshot 1
    assert len(search.search(wh, "river", at=1)[1]) == 2


def test_a_run_builds_the_index_of_its_snapshot(sample_warehouse):
    assert [p.name for p in (sample_warehouse / "search").glob("*.duckdb")] == ["sentences-1.duckdb"]
    rows = json.loads(corpus("search", "socialism one country", "--warehouse", str(sample_warehouse),
                             "--format", "json", "--limit", "3"))
    assert rows[0]["text"] == "Socialism in one country"
    # Words inside curly quotes are words: “socialism in one country” is found.
    assert "“socialism in one country”" in rows[2]["text"] and rows[2]["source_id"] == "socialist_worker"
    assert set(rows[0]) == {"score", "text", "title", "source_id", "published", "lang", "sentence_id"}


def test_kwic_lines_up_the_matches(sample_warehouse):
    output = corpus("kwic", "Socialism in ONE country", "--warehouse", str(sample_warehouse), "--width", "40")
    lines = output.splitlines()
    assert len(lines) == 7
    starts = {line.index(" | ") for line in lines}
    assert starts == {40}, "the match column must start at the same position on every line"
    assert all(line[43:67].lower() == "socialism in one country" for line in lines)


def test_kwic_lines_up_matches_with_little_text_before_them(tmp_path):
    """A match at the start of a document has no left context: padding must still align it."""
    wh = _warehouse(tmp_path)
    lines = corpus("kwic", "the river", "--warehouse", str(wh.root), "--width", "30").splitlines()
    assert [line.index(" | ") for line in lines] == [30, 30]
    assert [line[33:42] for line in lines] == ["The river", "The river"]


def test_kwic_context_comes_from_the_clean_text_by_offsets(tmp_path):
    wh = _warehouse(tmp_path)
    (first, second) = search.kwic(wh, "the river", width=12)
    assert (first.left, first.match, first.right) == ("", "The river", " flooded the")
    assert (second.left, second.match, second.right) == ("l in March. ", "The river", " was calm in")
    with wh.connect() as con:
        (clean,) = con.execute("SELECT clean_text FROM documents").fetchone()
    assert clean[second.char_start:second.char_start + 9] == "The river"
    assert search.kwic_lines([second], 15) == ["   l in March.  | The river |  was calm in"]


def test_kwic_exports_csv_and_json(sample_warehouse):
    rows = list(csv.DictReader(io.StringIO(corpus("kwic", "one country", "--warehouse", str(sample_warehouse),
                                                  "--format", "csv", "--limit", "2"))))
    assert len(rows) == 2 and all(r["match"].lower() == "one country" for r in rows)
    records = json.loads(corpus("kwic", "one country", "--warehouse", str(sample_warehouse), "--format", "json"))
    assert set(records[0]) == {"left", "match", "right", "doc_id", "char_start", "title", "source_id"}
    assert len(records) > 2


def test_kwic_finds_whole_words_through_the_index(tmp_path):
    wh = _warehouse(tmp_path)
    publish.publish(wh, _stage(tmp_path, "b.txt", "“Rivers” are not a river’s bank. The riverbank, the river-mill.", shard=2),
                    ["b.txt"], [SourceInfo("src")], _row("r2"))
    assert [c.match for c in search.kwic(wh, "river")] == ["river", "river", "river", "river"]
    assert [c.match for c in search.kwic(wh, "rivers")] == ["Rivers"]
    assert search.kwic(wh, "iver") == []  # inside a word
    assert search.kwic(wh, "zeppelin river") == []  # a word no sentence has
    assert [c.match for c in search.kwic(wh, "the")][:1] == ["The"]  # a stop word only: scanned


def test_phrase_sentences_gives_each_match_with_its_sentence_and_offsets(tmp_path):
    wh = _warehouse(tmp_path)
    found = search.phrase_sentences(wh, "the  RIVER")
    assert [(m.sentence, m.sentence_start, m.start, m.end) for m in found] == [
        ("The river flooded the old mill in March.", 0, 0, 9),
        ("The river was calm in May.", 41, 41, 50),
    ]
    assert search.phrase_sentences(wh, "river mill") == []  # both words, but not as a phrase


def test_a_phrase_with_quotes_or_a_nul_is_looked_up_as_written(tmp_path):
    wh = _warehouse(tmp_path)
    publish.publish(wh, _stage(tmp_path, "b.txt", "The miller's river ran dry. It's over.", shard=2),
                    ["b.txt"], [SourceInfo("src")], _row("r2"))
    assert [m.sentence for m in search.phrase_sentences(wh, "miller's river")] == ["The miller's river ran dry."]
    assert search.phrase_sentences(wh, "miller''s river") == []
    assert search.phrase_sentences(wh, "river\x00mill") == []  # the NUL is no space: no match, no error
