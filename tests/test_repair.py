import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ftfy.fixes import uncurl_quotes

from flows.stages.decode import decode
from flows.stages.repair import changed_chars, fix_encoding, normalise, split_glued_token
from tests.conftest import FIXTURES


def _cases(name: str) -> list[dict]:
    return json.loads((FIXTURES / "ftfy" / name).read_text(encoding="utf-8"))


def _as_expected(case: dict) -> bool:
    """Our repair matches the case's expected encoding fix, up to quote style.

    ftfy's `fixed` also uncurls quotes and rewrites ligatures and wide characters; we keep the
    author's typography on purpose, so the encoding-only `fixed-encoding` is compared when given.
    """
    actual = uncurl_quotes(normalise(fix_encoding(case["original"])))
    expected = [case["fixed"], case.get("fixed-encoding", case["fixed"])]
    return actual in {uncurl_quotes(normalise(e)) for e in expected}


@pytest.mark.parametrize("case", _cases("in-the-wild.json") + _cases("synthetic.json"),
                         ids=lambda c: c["label"][:60])
def test_real_world_mojibake_is_fixed(case):
    assert _as_expected(case)


@pytest.mark.parametrize("case", _cases("negative.json"), ids=lambda c: c["label"][:60])
def test_text_that_only_looks_like_mojibake_is_unchanged(case):
    assert _as_expected(case)


def test_curly_quotes_dashes_and_ellipses_are_kept():
    text = "\u201cIt\u2019s \u2014 well\u2026\u201d she said \u2018twice\u2019."
    assert fix_encoding(text) == text


def test_labelled_charset_files_decode_to_the_right_text():
    labels = json.loads((FIXTURES / "charsets" / "encodings.json").read_text())
    wrong = []
    for name, info in sorted(labels.items()):
        data = (FIXTURES / "charsets" / name).read_bytes()
        result = decode(data, name)
        expected = data.decode(info["python_codec"]).lstrip("\ufeff")
        if isinstance(result, tuple) and result[0].lstrip("\ufeff") == expected:
            continue
        wrong.append((name, info["python_codec"], result[1] if isinstance(result, tuple) else result))
    assert wrong == []


@pytest.mark.parametrize(
    "token, split",
    [("Bolshevikhad", "Bolshevik had"), ("ourmovement", "our movement"), ("thegovernment", "the government"),
     ("Pingback", None), ("charliemarks", None), ("onself", None), ("antirevisionist", None),
     ("Djugashvili", None), ("movement", None)],
)
def test_glued_tokens_split_only_when_certain(token, split):
    assert split_glued_token(token) == split


@settings(max_examples=2000)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_normalise_fast_path_equals_the_slow_path(line):
    from flows.stages import fastpaths

    fast = normalise(line)
    with fastpaths.disabled():
        assert normalise(line) == fast


def test_changed_chars_counts_the_fewest_changes():
    assert changed_chars("same", "same") == 0
    assert changed_chars("cafÃ©", "café") == 2  # "Ã©" became "é": one replaced, one dropped
    assert changed_chars("itâ€™s", "it’s") == 3
    assert changed_chars("a  b", "a b") == 1
    assert changed_chars("abc", "") == 3
    assert changed_chars("baba", "bba") == 1  # one "a" dropped (difflib's matching blocks said 2)


def test_changed_chars_of_a_long_mojibake_line():
    # An 8,880-character paragraph read as cp1252: difflib took about a minute on it.
    line = "Le café est très bon, n’est-ce pas? " * 240
    mojibake = line.encode("utf-8").decode("cp1252")
    repaired = fix_encoding(mojibake)
    assert repaired == line
    assert changed_chars(mojibake, repaired) == 240 * (2 + 2 + 3)  # é, è: 2 chars for 1; ’: 3 for 1
