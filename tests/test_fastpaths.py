"""Every fast path gives the rows of its slow path: on the sample, on generated text, on the
ftfy and sentence gold cases, and where each shortcut applies."""

import json
from pathlib import Path

import ftfy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import make_corpus
from flows.stages import fastpaths
from flows.stages.ingest import inventory
from flows.stages.document import DOCUMENT_TABLES, process_file
from flows.stages.repair import _FTFY_CONFIG, _TOKEN, _glue_settings, _long_token, fix_encoding, ftfy_can_change, split_glued_words
from flows.stages.segment import blingfire_split, nupunkt_split, one_sentence, split_sentences, syntok_split
from tests.conftest import FIXTURES, SAMPLE


def _rows(raw_dir: Path) -> list[dict]:
    found = inventory(raw_dir)
    sources = {s.source_id: s for s in found.sources}
    out = []
    for raw in found.files:
        rows = process_file(raw, (raw_dir / raw.raw_path).read_bytes(), sources.get(raw.meta.source_id))
        out.append({name: getattr(rows, name) for name in DOCUMENT_TABLES})
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated") / "raw"
    make_corpus.generate(out, make_corpus.load_paragraphs(SAMPLE), seed=7, max_docs=40, max_bytes=None)
    return out


@pytest.mark.parametrize("which", ["sample", "generated"])
def test_fast_paths_give_the_same_rows_as_slow_paths(which, generated):
    raw_dir = SAMPLE if which == "sample" else generated
    fast = _rows(raw_dir)
    with fastpaths.disabled():
        slow = _rows(raw_dir)
    assert fast == slow
    assert sum(len(doc["sentences"]) for doc in fast) > 100


def test_fast_paths_are_back_on_after_the_slow_comparison():
    with fastpaths.disabled():
        assert not fastpaths.enabled()
    assert fastpaths.enabled()


def _ftfy_cases() -> list[str]:
    cases = []
    for name in ("in-the-wild.json", "synthetic.json", "negative.json", "known-failures.json"):
        path = FIXTURES / "ftfy" / name
        if path.exists():
            cases += [case["original"] for case in json.loads(path.read_text(encoding="utf-8"))]
    lines = [line for path in sorted(SAMPLE.glob("*.txt")) for line in path.read_text(encoding="utf-8").splitlines()]
    return cases + lines + ["caf\u00e9 \u2019quoted\u2019", "cafe\u0301 (not NFC)", "AT&amp;T", "\x1b[31mred", "\x85 C1"]


def test_ftfy_is_skipped_only_where_it_would_change_nothing():
    cases = _ftfy_cases()
    skipped = [line for line in cases if not ftfy_can_change(line)]
    assert [ftfy.fix_text(line, _FTFY_CONFIG) for line in skipped] == skipped
    assert len(skipped) > len(cases) / 2  # the shortcut does apply to most real lines
    assert [fix_encoding(line) for line in cases] == [ftfy.fix_text(line, _FTFY_CONFIG) for line in cases]


def test_ftfy_still_runs_on_mojibake_entities_and_unnormalised_text():
    assert all(ftfy_can_change(line) for line in ["sÃ³", "AT&amp;T", "cafe\u0301", "\x1b[31mred"])


def test_glued_word_search_skips_lines_of_known_words_only():
    for line in ["The Bolshevikhad won.", "Plain known words only here.", "Djugashvili wrote onself"]:
        fast = split_glued_words(line)
        with fastpaths.disabled():
            assert split_glued_words(line) == fast
    assert split_glued_words("The Bolshevikhad won.")[0] == "The Bolshevik had won."


def _gold_blocks() -> list[str]:
    lines = (FIXTURES / "gold_sentences.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def test_blocks_taken_as_one_sentence_are_one_sentence_for_every_splitter():
    blocks = _gold_blocks() + ["A heading", "What now?!", "He said \u201cyes.\u201d", "Tabs\tand  spaces"]
    shortcut = [b for b in blocks if one_sentence(b)]
    assert len(shortcut) >= 4
    for block in shortcut:
        for split in (nupunkt_split, blingfire_split, syntok_split):
            assert len(split(block)) == 1, (split.__name__, block)
    for block in blocks:
        fast = split_sentences(block)
        with fastpaths.disabled():
            assert split_sentences(block) == fast
    assert not one_sentence("One. Two.") and not one_sentence("Is it? Yes")


def test_the_glued_word_search_looks_at_exactly_the_long_tokens():
    min_chars = _glue_settings()[3]
    lines = [line for path in sorted(SAMPLE.glob("*.txt")) for line in path.read_text(encoding="utf-8").splitlines()]
    lines += ["abcdefg abcdef Abcdefgh ABCDEFGH xThemselves", "don't well-known O'Connor’s Bolshevikhad's",
              "abc1234567 _Bolshevikhad Bolshevikhad_ (Bolshevikhad) “Bolshevikhad”", "Kaufmannsladen-Verkäufer"]
    assert [len(w) for w in ("abcdefg", "abcdef")] == [min_chars, min_chars - 1]  # the edge is tested
    for line in lines:
        found = [(m.start(), m[0]) for m in _long_token().finditer(line)]
        assert found == [(m.start(), m[1]) for m in _TOKEN.finditer(line) if len(m[1]) >= min_chars], line
    assert [m[0] for m in _long_token().finditer(lines[-4])] == ["abcdefg", "Abcdefgh"]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcdefgXY _-'’é1.")), max_size=60))
def test_the_long_token_pattern_finds_the_long_tokens_of_any_text(line):
    min_chars = _glue_settings()[3]
    found = [(m.start(), m[0]) for m in _long_token().finditer(line)]
    assert found == [(m.start(1), m[1]) for m in _TOKEN.finditer(line) if len(m[1]) >= min_chars]
