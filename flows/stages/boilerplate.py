"""Boilerplate: a general line classifier for site chrome in scraped text, on any site.

Takes the non-blank lines of one document (as `clean` reads them); gives each line the
probability that it is content. Signals that carry across sites, as in jusText, Boilerpipe
and the C4 rules: the line's length in words, its share of stop words (the most common words
of ten languages), terminal punctuation, title-case and capitals, digits and separators, its
position in the page, its neighbourhood (runs of short lines: menus, link lists; the lines
around it), and its words: a lexicon of how much more often each word is found in chrome
lines than in content ones, counted over sites (only words found on many sites are in it, so
"share", "archives" or "posted" count and a site's own name does not). Two gradient-boosted
tree ensembles, the second reading the first's probabilities of the line, its neighbours and
the page, with the line's own features (context smoothing: a short line between two
paragraphs is content, one inside a run of menu items is not; a page whose lines all score
low is not an article). The trees are data (boilerplate_model.json),
fitted by `python benchmarks/train_boilerplate.py` on dragnet's train split; inference is a
few NumPy operations over all trees and lines at once.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import wordfreq

from flows.stages.trees import Forest

MODEL_PATH = Path(__file__).with_name("boilerplate_model.json")
STOP_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "sv", "pl", "ru")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_TERMINAL = re.compile(r"[.!?…:;\"'”’»)]\s*$")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)]*\s*$")
_SEPARATORS = re.compile(r"[|»«·•›‹/\\>]")
_LINKISH = re.compile(r"https?://|www\.|\.com\b|@\w")
_DIGIT = re.compile(r"\d")
_CLOCK = re.compile(r"\b\d{1,2}[:.]\d\d\s*(?:[ap]\.?m\.?|[AP]M)?\b|\b(?:19|20)\d\d\b")
_PUNCTUATION = re.compile(r"[^\w\s]")
SHORT_WORDS = 4  # a line of at most this many words is "short" (menu items, labels)
WINDOW = 3  # lines either side that the context features read
_HEAD_CHARS = 160  # the characters of a line its word shares are read from
_SURE = 0.7  # a first probability this high marks a line of the page's content
_LONG_LOG_WORDS = math.log1p(10)  # a line of ten words or more, ending a sentence, is prose
_REACH = 8  # lines over which the distance to the page's content is counted


@cache
def stop_words() -> frozenset[str]:
    """The 100 most common words of each of STOP_LANGUAGES (wordfreq), lower-cased."""
    return frozenset(w for lang in STOP_LANGUAGES for w in wordfreq.top_n_list(lang, 100))


def _line_features(text: str) -> list[float]:
    # Shares of words are read from the line's head: a paragraph's first words say as much as
    # all of them, and a long line then costs what a short one does.
    head = text[:_HEAD_CHARS]
    words = _WORD.findall(head)
    n_words = len(words) if len(text) <= _HEAD_CHARS else max(len(words), text.count(" ") + 1)
    n_tokens = max(text.count(" ") + 1, 1)
    n_stop = sum(map(stop_words().__contains__, _WORD.findall(head.lower())))
    titled = sum(map(str.isupper, (w[0] for w in words)))
    letters = sum(map(len, words))  # letters of the words (and their apostrophes)
    return [
        math.log1p(n_words),
        math.log1p(len(text)),
        n_stop / len(words) if words else 0.0,
        1.0 if _TERMINAL.search(text) else 0.0,
        1.0 if _SENTENCE_END.search(text) else 0.0,
        titled / len(words) if words else 0.0,
        1.0 if words and head.upper() == head else 0.0,
        min(letters / len(head), 1.0),
        len(_DIGIT.findall(head)) / len(head),
        min(len(_SEPARATORS.findall(head)), 5) / 5,
        1.0 if _LINKISH.search(head) else 0.0,
        text.count(",") / n_tokens,
        1.0 if n_words <= SHORT_WORDS else 0.0,
        1.0 if _CLOCK.search(head) else 0.0,
        len(_PUNCTUATION.findall(head)) / len(head),
    ]


N_LINE_FEATURES = 15


def line_words(text: str) -> set[str]:
    """The distinct lower-cased words of a line's head: what the lexicon is read with."""
    return set(_WORD.findall(text[:_HEAD_CHARS].lower()))


def _lexicon_features(lines: list[str], lexicon: Mapping[str, float]) -> list[list[float]]:
    """Per line: the mean, lowest and highest lexicon score of its words found in the lexicon,
    the share of its words that are, and the mean score of the lines around it."""
    own = []
    for text in lines:
        words = line_words(text)
        scores = [lexicon[w] for w in words if w in lexicon]
        # fsum: a set's order changes from process to process, and a plain sum's last bit with it.
        own.append([math.fsum(scores) / len(scores), min(scores), max(scores), len(scores) / len(words)]
                   if scores else [0.0, 0.0, 0.0, 0.0])
    n = len(own)
    rows = []
    for i in range(n):
        window = [own[j][0] for j in range(max(0, i - WINDOW), min(n, i + WINDOW + 1)) if j != i]
        rows.append([*own[i], sum(window) / len(window) if window else 0.0])
    return rows


def _span_and_distance(marked: list[int], n: int) -> tuple[int, int, list[int]]:
    """For the marked lines of a page of `n`: the first and last of them ((n, -1) if none), and
    every line's distance to the nearest one (at most _REACH; n when further)."""
    nearest = [n] * n
    for i in marked:
        for j in range(max(0, i - _REACH), min(n, i + _REACH + 1)):
            nearest[j] = min(nearest[j], abs(i - j))
    return (marked[0], marked[-1], nearest) if marked else (n, -1, nearest)


def features(lines: list[str], lexicon: Mapping[str, float] | None = None) -> list[list[float]]:
    """The first model's features of every line: its own, its neighbours' summaries, its place,
    its words (`lexicon`: the model's unless given, as training gives each fold its own)."""
    own = [_line_features(text) for text in lines]
    lexical = _lexicon_features(lines, model()["lexicon"] if lexicon is None else lexicon)
    short = [f[12] for f in own]
    n = len(lines)
    # The run of consecutive short lines each line belongs to (0 for a long line).
    run = [0] * n
    i = 0
    while i < n:
        j = i
        while j < n and short[j]:
            j += 1
        for k in range(i, j):
            run[k] = j - i
        i = max(j, i + 1)
    # The page's main region: from its first to its last long sentence-like line.
    is_long = [f[0] >= _LONG_LOG_WORDS and bool(f[4]) for f in own]
    first_long, last_long, nearest = _span_and_distance([i for i in range(n) if is_long[i]], n)
    words = [math.expm1(f[0]) for f in own]
    total_words = sum(words) or 1.0
    most_words = max(words) or 1.0
    before_words = 0.0
    keys = [text.casefold() for text in lines]
    copies = Counter(keys)
    rows = []
    for i in range(n):
        window = [own[j] for j in range(max(0, i - WINDOW), min(n, i + WINDOW + 1)) if j != i]
        wide = range(max(0, i - 2 * WINDOW), min(n, i + 2 * WINDOW + 1))
        before = own[i - 1] if i else [0.0] * N_LINE_FEATURES
        after = own[i + 1] if i + 1 < n else [0.0] * N_LINE_FEATURES
        rows.append([
            *own[i],
            math.log1p(run[i]),
            sum(f[12] for f in window) / len(window) if window else 1.0,
            sum(f[0] for f in window) / len(window) if window else 0.0,
            sum(f[2] for f in window) / len(window) if window else 0.0,
            before[0], before[2], before[4],
            after[0], after[2], after[4],
            i / n,
            1.0 if i < 3 else 0.0,
            1.0 if n - i <= 3 else 0.0,
            1.0 if first_long <= i <= last_long else 0.0,
            math.log1p(min(nearest[i], 9)),
            before_words / total_words,
            words[i] / most_words,
            math.log1p(sum(words[j] for j in wide)),
            sum(1 for j in wide if is_long[j]) / len(wide),
            min(copies[keys[i]] - 1, 3) / 3,
            *lexical[i],
        ])
        before_words += words[i]
    return rows


def context_features(first: list[float], rows: list[list[float]]) -> list[list[float]]:
    """The second model's features, from the first's probabilities and features (`rows`): a
    line's first probability, its neighbours', where it lies against the page's likely content
    (the span of lines the first model is sure of), the page as a whole (how much of it looks
    like content, and its length), and the line's own features again."""
    n = len(first)
    sure = [i for i, q in enumerate(first) if q >= _SURE]
    start, end, nearest = _span_and_distance(sure, n)
    page = [sum(first) / n, sum(1 for q in first if q >= 0.5) / n, math.log1p(n)]

    def p(j: int) -> float:
        return first[j] if 0 <= j < n else 0.5

    out = []
    for i in range(n):
        window = [first[j] for j in range(max(0, i - WINDOW), min(n, i + WINDOW + 1)) if j != i]
        wide = [first[j] for j in range(max(0, i - 3 * WINDOW), min(n, i + 3 * WINDOW + 1))]
        out.append([p(i), p(i - 1), p(i + 1), p(i - 2), p(i + 2),
                     sum(window) / len(window) if window else 0.5,
                     max(window) if window else 0.5, min(window) if window else 0.5,
                     sum(wide) / len(wide),
                     1.0 if start <= i <= end else 0.0,
                     math.log1p(min(nearest[i], 9)),
                     (i - start) / n if sure else -1.0, (end - i) / n if sure else -1.0,
                     *page, *rows[i][:N_LINE_FEATURES]])
    return out


@cache
def model() -> dict:
    return json.loads(MODEL_PATH.read_text(encoding="utf-8"))


@cache
def _forests() -> tuple[Forest, Forest]:
    return Forest(model()["lines"]), Forest(model()["context"])


def content_probabilities(lines: list[str], forests: tuple[Forest, Forest] | None = None) -> list[float]:
    """P(content) of every line, rounded so that the same lines give the same bytes everywhere."""
    if not lines:
        return []
    first_forest, context_forest = forests or _forests()
    rows = features(lines)
    first = [float(p) for p in first_forest.probabilities(rows)]
    return [round(float(p), 4) for p in context_forest.probabilities(context_features(first, rows))]


def threshold() -> float:
    """Lines whose probability of content is below this are boilerplate."""
    return float(model()["threshold"])
