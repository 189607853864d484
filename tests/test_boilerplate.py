"""The boilerplate classifier: a menu run goes, a short paragraph between good ones stays."""

import math
import os
import subprocess
import sys

import pytest

from flows.stages import boilerplate
from flows.stages.clean import clean
from flows.stages.rules import rules

MENU = ["Home", "News", "Sport", "Weather", "Business", "Opinion", "Contact us"]
FOOTER = ["Share this article", "Facebook", "Twitter", "Email", "Most read", "Privacy policy", "Terms of use",
          "Cookie settings", "About us", "Advertise with us"]
PARAGRAPHS = [
    "The river rose by two metres overnight, and the town's older residents said they had not seen the "
    "water this high since the spring of 1998.",
    "Engineers from the county council spent the morning checking the flood walls along the east bank, "
    "where the water reached the top of the sandbags shortly after dawn.",
    "It kept raining.",
    "By noon the bridge was closed to traffic, and the school on the far side of the river sent its pupils "
    "home early, with buses taking the long way round through the hills.",
    "The forecast for the weekend is no better, and the council has asked residents near the river to move "
    "valuables upstairs and to keep an eye on its website for updates.",
]
PAGE = ["Flood waters rise in the valley - The Valley Courier", *MENU, "Flood waters rise in the valley",
        "By Ann Example", *PARAGRAPHS, *FOOTER]


def test_a_menu_run_and_a_footer_are_removed_and_the_article_kept():
    cleaned = clean("\n".join(PAGE))
    blocks = [(b.section, cleaned.clean_text[b.char_start:b.char_end]) for b in cleaned.blocks]
    # "It kept raining." stays between two good paragraphs; the whole menu goes.
    assert blocks == [("title", PAGE[0]), ("standfirst", "Flood waters rise in the valley"),
                      ("heading", "By Ann Example"), *(("body", p) for p in PARAGRAPHS)]
    by_rule = {r.text: r.rule for r in cleaned.removed}
    assert [by_rule[line] for line in MENU[1:] + FOOTER[1:]] == ["boilerplate.line"] * (len(MENU) + len(FOOTER) - 2)
    assert by_rule["Home"] == by_rule["Share this article"] == "chrome.navigation"  # the rules come first
    cut = boilerplate.threshold()
    assert all(0 <= r.score < cut for r in cleaned.removed if r.rule == "boilerplate.line")
    assert all(r.score is None for r in cleaned.removed if r.rule != "boilerplate.line")


def test_the_short_paragraph_scores_as_content_and_the_menu_items_do_not():
    scores = dict(zip(PAGE, boilerplate.content_probabilities(PAGE)))
    assert scores["It kept raining."] >= boilerplate.threshold()
    assert max(scores[item] for item in MENU + FOOTER) < boilerplate.threshold()
    assert boilerplate.content_probabilities(PAGE) == boilerplate.content_probabilities(list(PAGE))


def test_a_short_document_is_not_classified():
    text = "\n".join(["Home", "News", *PARAGRAPHS[:2]])
    assert [r.rule for r in clean(text).removed] == ["chrome.navigation"]


EVERY_LINE_BUT_THE_BEST = [line for line in PAGE if line not in ("Home", "Share this article", PARAGRAPHS[0])]


@pytest.mark.parametrize(("best", "removed"), [(0.69, []), (0.7, EVERY_LINE_BUT_THE_BEST)])
def test_a_page_none_of_whose_lines_is_surely_content_is_left_alone(monkeypatch, best, removed):
    # A listing or a directory, whose lines are its content: the model, which knows articles,
    # is sure of none of them. With one line at `best` and every other at 0.1, the page is
    # classified only when that line reaches page_min_content ("Home" and "Share this article"
    # are the rules' own).
    assert rules()["boilerplate"]["page_min_content"] == 0.7
    scores = [best if line == PARAGRAPHS[0] else 0.1 for line in PAGE]
    monkeypatch.setattr(boilerplate, "content_probabilities", lambda lines: scores)
    cleaned = clean("\n".join(PAGE))
    assert [r.text for r in cleaned.removed if r.rule == "boilerplate.line"] == removed


def test_a_line_s_words_are_scored_by_the_lexicon_with_its_neighbours():
    lexicon = {"share": -2.0, "this": 0.5, "said": 1.5}
    assert boilerplate.line_words("Share THIS, share this! 42") == {"share", "this"}
    assert boilerplate._lexicon_features(["Share this", "He said so", "Nothing known"], lexicon) == [
        [-0.75, -2.0, 0.5, 1.0, 0.75],  # last: the mean of its neighbours' means, (1.5 + 0) / 2
        [1.5, 1.5, 1.5, 1 / 3, -0.375],  # "he" and "so" are not in it
        [0.0, 0.0, 0.0, 0.0, 0.375],
    ]


def test_a_line_s_lexicon_features_are_the_same_under_every_hash_seed():
    # A set's order follows the process's hash seed, and the order of a float sum decides its
    # last bit: the same line must give the same features in every worker.
    script = ("from flows.stages import boilerplate; "
              "print(repr(boilerplate._lexicon_features(['a b c d e f'], "
              "{'a': 0.1, 'b': 0.2, 'c': 0.3, 'd': 0.7, 'e': 1.1, 'f': 1.3})[0][0]))")
    means = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout.strip()
             for seed in range(12)}
    assert means == {repr(math.fsum([0.1, 0.2, 0.3, 0.7, 1.1, 1.3]) / 6)}
