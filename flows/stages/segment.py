"""Segment: blocks of clean text -> sentence spans with exact offsets.

Takes the clean text and its blocks; gives `Span`s (block index, char_start, char_end) into the
clean text. Sentences never cross blocks, are never empty, keep the original characters, and
together cover every non-whitespace character of every block exactly once.

Splitting, chosen by measurement (benchmarks/sbd.py on UD English dev, benchmarks/splitters.py
on the gold set in tests/fixtures): two fast splitters, nupunkt and blingfire, propose
sentence starts, and so does every terminal mark followed by white space; a small tree
ensemble trained on UD English train (sentence_model.json, benchmarks/train_splitter.py)
keeps the starts it finds likely. A block with no terminal mark is one sentence without
asking anyone. The libraries propose sentence strings; `align` maps them back onto the
block, so a splitter that trims or collapses whitespace can never shift an offset.
"""

from __future__ import annotations

import ctypes
import json
import re
import threading
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

import blingfire
import nupunkt
import pysbd
from syntok import segmenter as syntok_segmenter

from flows.stages import fastpaths
from flows.stages.records import Block, Span
from flows.stages.trees import Forest

Splitter = Callable[[str], list[str]]


@cache
def _pysbd() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False, char_span=False)


def pysbd_split(text: str) -> list[str]:
    return _pysbd().segment(text)


class _BlingfireBuffer(threading.local):
    """An output buffer reused across calls (one per thread: Dask workers may run several)."""

    data = ctypes.create_string_buffer(0)


_blingfire_out = _BlingfireBuffer()


def blingfire_text_to_sentences(text: str) -> str:
    """`blingfire.text_to_sentences(text)`, calling the same C function with the same output
    limit (twice the input's UTF-8 bytes) into a buffer kept between calls: the wrapper's fresh,
    zero-filled buffer per call is a large share of its time (the same output for every block,
    tests/test_segment.py)."""
    data = text.encode("utf-8")
    limit = 2 * len(data)
    if len(_blingfire_out.data) < limit:
        _blingfire_out.data = ctypes.create_string_buffer(limit)
    written = blingfire.blingfire.TextToSentences(data, len(data), _blingfire_out.data, limit)
    if written == -1 or written > limit:
        return ""
    # The count includes the terminating NUL; the wrapper's .value stops at the first NUL.
    return ctypes.string_at(_blingfire_out.data, written).split(b"\0", 1)[0].decode("utf-8")


def blingfire_split(text: str) -> list[str]:
    return blingfire_text_to_sentences(text).split("\n") if text.strip() else []


def nupunkt_split(text: str) -> list[str]:
    return nupunkt.sent_tokenize(text)


def syntok_split(text: str) -> list[str]:
    return [
        "".join(token.spacing + token.value for token in sentence).strip()
        for paragraph in syntok_segmenter.analyze(text)
        for sentence in paragraph
    ]


# Characters at which a sentence may end for the splitters, or a list item start (bullets). A
# block with none of them before its final run of closing punctuation is one sentence, so no
# splitter is run.
_BOUNDARY = re.compile(r"[.!?…;:\n\r\u2028\u2029。！？‼⁇⁈⁉•▪◦●‣]")
# The closing punctuation and white space (the 29 characters str.isspace, as regex \s, takes;
# tests/test_segment.py checks them against every code point) that may end a sentence. Stripped
# with str.rstrip: the regex [...]+$ gives the same text and tries every position.
WHITE_SPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
               "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_FINAL_CHARS = ".!?…;:。！？‼⁇⁈⁉\"'”’»)]" + WHITE_SPACE


def strip_final_run(text: str) -> str:
    """`text` without its final run of closing punctuation and white space."""
    return text.rstrip(_FINAL_CHARS)


def one_sentence(text: str) -> bool:
    return not _BOUNDARY.search(strip_final_run(text))


@cache
def _nupunkt_abbreviations() -> frozenset[str]:
    return frozenset(nupunkt.load_default_model()._params.abbrev_types)


# Where blingfire is sure: every sentence it returns is free of inner boundary characters
# (a period only inside a number, like 3.5), and every cut it makes follows a word of two or
# more letters (or a number) that is not an abbreviation for nupunkt, and precedes a capital.
# Written to start with a literal or a class, which the regex engine scans for quickly: the same
# matches as (?<!\d)\.|\.(?!\d)|[...], which tries a lookbehind at every position.
_INNER_BOUNDARY = re.compile(r"\.(?:(?!\d)|(?<!\d\.))|[!?…\n\r\u2028\u2029。！？‼⁇⁈⁉]")
_PLAIN_END = re.compile(r"(?<![^\s\"'“‘(\[])([A-Za-z][a-z]+|[0-9]+%?)[.!?][\"'”’)\]]*$")
_CAPITAL_START = re.compile(r"[\"'“‘(\[]?[A-Z]")


# How far from its end `plain_end` first looks for a sentence's last word: past any common word
# with its punctuation and closing quotes.
_PLAIN_END_TAIL = 24


def plain_end(piece: str) -> re.Match | None:
    """`_PLAIN_END.search(piece)`, looking in the last characters first. A match ends the string
    and cannot start inside a word (its lookbehind sees the characters before the start of
    the search), so a match found there is the match; else the whole piece is searched.
    Searching whole pieces would try the pattern at every position of long ones."""
    tail_start = len(piece) - _PLAIN_END_TAIL
    if tail_start > 0 and (found := _PLAIN_END.search(piece, tail_start)) is not None:
        return found
    return _PLAIN_END.search(piece)


def plain_cuts(pieces: list[str]) -> bool:
    """True when blingfire's sentences leave nothing to decide: nupunkt would cut at the
    same places, so it is not run (tests/test_segment.py checks it on the gold set;
    benchmarks/compare.py, with fast paths on and off, on BBC text)."""
    if len(pieces) < 2:
        return False
    abbreviations = _nupunkt_abbreviations()
    for piece, following in zip(pieces, pieces[1:] + [None]):
        if _INNER_BOUNDARY.search(strip_final_run(piece)):
            return False
        if following is not None:
            end = plain_end(piece)
            if not end or end.group(1).lower() in abbreviations or not _CAPITAL_START.match(following):
                return False
    return True


# --- the boundary classifier ----------------------------------------------------------------

SENTENCE_MODEL_PATH = Path(__file__).with_name("sentence_model.json")
# Sentence starts no splitter proposed: after terminal punctuation (closing quotes and
# brackets included) and white space.
_AFTER_TERMINAL = re.compile(r"[.!?…][\"'”’»)\]]*\s+(?=\S)")
_CLOSERS = "\"'”’»)]"
_OPENERS = "\"'“‘«(["
_JOINERS = re.compile(r"[—–/]")
_WINDOW = 200  # characters: longer than any word the features look at
# Positions in `boundary_features` that the rules after the trees read.
_ABBREVIATION, _NEXT_LETTER, _CLOSES_BRACKET = 6, 20, 21
_CLASSES = {".": 1, "!": 2, "?": 3, "…": 4, ":": 5, ";": 6, ",": 7, '"': 8, "'": 8, "”": 9, "’": 9, "»": 9,
            ")": 10, "]": 10, "-": 11, "—": 11, "–": 11}
_PRONOUN_I = frozenset({"i", "i'm", "i've", "i'll", "i'd", "i’m", "i’ve", "i’ll", "i’d"})


def char_class(ch: str) -> int:
    """A character's kind, as the trees see it: a terminal or closing mark, a letter's case, a
    digit, an opening mark, a bullet, or anything else (0: no character)."""
    if not ch:
        return 0
    if ch in _CLASSES:
        return _CLASSES[ch]
    if ch.isupper():
        return 12
    if ch.islower():
        return 13
    if ch.isdigit():
        return 14
    return 15 if ch in "“‘«([" else 16 if ch in "•*·▪" else 17


def boundary_features(text: str, start: int, proposed_by: tuple[bool, bool], previous: int, following: int) -> list[float]:
    """What the classifier knows of a candidate sentence start at `start` in `text`: which of
    blingfire and nupunkt proposed it, the marks and the word before it, the word after it,
    and the words since the previous candidate and up to the next."""
    # The words around the start lie within a short window: slicing the whole text on each
    # side would make a long block's features cost the square of its length.
    left, right = text[max(0, start - _WINDOW):start].rstrip(), text[start:start + _WINDOW]
    words_before = left.rsplit(None, 2)[-2:] if left else [""]
    before, earlier = words_before[-1], (words_before[0] if len(words_before) == 2 else "")
    after = right.split(None, 1)[0] if right.strip() else ""
    bare = before.rstrip(_CLOSERS)
    closing = before[len(bare):]
    # The word itself: "society—i.e." ends with the abbreviation "i.e.".
    core = _JOINERS.split(bare)[-1].rstrip(".!?…:;,")
    return [float(proposed_by[0]), float(proposed_by[1]), char_class(left[-1:]), char_class(bare[-1:]),
            len(before), len(core), float(core.lower() in _nupunkt_abbreviations()),
            float(len(core) == 1 and core.isupper()), float(core.isupper() and len(core) > 1),
            float(any(c.isdigit() for c in core)), core.count("."), float(core[:1].isupper()),
            char_class(after[:1]), float(after.lower().rstrip(_CLOSERS) in _PRONOUN_I),
            float(after.isupper() and len(after) > 1), len(after), float(after[:1].isupper() and after[1:].islower()),
            len(text[previous:start].split()), len(text[start:following].split()), float(bare.endswith("..")),
            # The first letter after opening quotes and brackets; a mark closing a bracket
            # (a parenthetical "(get it?)" seldom ends its sentence).
            char_class(after.lstrip(_OPENERS)[:1]), float(")" in closing or "]" in closing),
            # A number or degree before a one-letter word: a compass point ("74.0060° W."), no initial.
            float(any(ch.isdigit() or ch == "°" for ch in earlier))]


def candidates(text: str) -> list[tuple[int, list[float]]]:
    """Every place in `text` where a sentence may start, with its features: where blingfire or
    nupunkt start one, and after any terminal punctuation."""
    blingfire_pieces = blingfire_split(text)
    blingfire_starts = {start for start, _ in align(text, blingfire_pieces)[1:]}
    if fastpaths.enabled() and plain_cuts(blingfire_pieces):
        nupunkt_starts = blingfire_starts  # nupunkt would cut at the same places
    else:
        nupunkt_starts = {start for start, _ in align(text, nupunkt_split(text))[1:]}
    extra = {m.end() for m in _AFTER_TERMINAL.finditer(text)}
    starts = sorted(blingfire_starts | nupunkt_starts | extra)
    bounds = [0, *starts, len(text)]
    return [(start, boundary_features(text, start, (start in blingfire_starts, start in nupunkt_starts),
                                      bounds[i], bounds[i + 2]))
            for i, start in enumerate(starts)]


# Markers of list items written inside one line: bullets; a dash after a colon, repeated; and
# numbers counting up from 1 ("1.) a pen 2.) paper"). Each item is a sentence of its own.
_BULLET = re.compile(r"(?<!\S)[•▪◦●‣](?=\s)")
_DASH_ITEM = re.compile(r"(?<=\s)[-–](?=\s)")
_ENUMERATOR = re.compile(r"(?<!\S)\(?([1-9][0-9]?)[.)]\)?(?=\s)")
# What every list has somewhere (a bullet, a spaced dash, an item numbered 1): most blocks
# have none, and one search tells.
_LIST_HINT = re.compile(r"[•▪◦●‣]|\s[-–]\s|1[.)]")


def list_item_starts(text: str) -> list[int]:
    """Where the items of a list written inside `text` start (not at its very start)."""
    if not _LIST_HINT.search(text):
        return []
    starts = [m.start() for m in _BULLET.finditer(text)]
    dashes = [m.start() for m in _DASH_ITEM.finditer(text)]
    if len(dashes) >= 2 and text[: dashes[0]].rstrip().endswith(":"):
        starts += dashes
    counted: list[int] = []
    for match in _ENUMERATOR.finditer(text):
        number = int(match.group(1))
        if number == len(counted) + 1:
            counted.append(match.start())
        elif number == 1:
            counted = [match.start()]
    if len(counted) >= 2:
        starts += counted
    return sorted({start for start in starts if start > 0})


# A piece that would be only a number ("858." heading an article, "3)" of a list) or only
# marks ("(...)") is no sentence: it stays with the text that follows.
_NUMBER_ONLY = re.compile(r"\(?[0-9]{1,4}[.)]\)?|[\W_]+")


def _continues(features: list[float]) -> bool:
    """A lower-case word continues the sentence after a closing bracket ("our (get it?)
    contradictions") or a known abbreviation ("society—i.e. socialism"): UD English has too
    few of either for the trees to learn it, and the rule costs nothing on its dev sets
    (benchmarks/sbd.py)."""
    after_mark = bool(features[_CLOSES_BRACKET]) or bool(features[_ABBREVIATION])
    return after_mark and features[_NEXT_LETTER] == char_class("a")


@cache
def _boundary_model() -> tuple[Forest, float]:
    spec = json.loads(SENTENCE_MODEL_PATH.read_text(encoding="utf-8"))
    return Forest(spec["trees"]), float(spec["threshold"])


def split_many(texts: list[str]) -> list[list[str]]:
    """The pipeline's splitter over many blocks: a tree ensemble (sentence_model.json, trained
    on UD English by benchmarks/train_splitter.py) decides at every candidate start
    (`candidates`) of all of them in one evaluation, which costs about what one block's does."""
    found = [None if fastpaths.enabled() and one_sentence(text) else candidates(text) for text in texts]
    rows = [features for block in found if block for _, features in block]
    if rows:
        forest, threshold = _boundary_model()
        likely = iter(forest.probabilities(rows) >= threshold)
    split = []
    for text, block in zip(texts, found):
        if block is None:
            split.append([text.strip()] if text.strip() else [])
            continue
        cuts = {0, *list_item_starts(text)}
        cuts.update(start for start, features in block if next(likely) and not _continues(features))
        ordered: list[int] = []
        for cut in sorted(cuts):
            if not ordered or not _NUMBER_ONLY.fullmatch(text[ordered[-1]:cut].strip()):
                ordered.append(cut)
        pieces = (text[a:b].strip() for a, b in zip(ordered, ordered[1:] + [len(text)]))
        split.append([piece for piece in pieces if piece])
    return split


def split_sentences(text: str) -> list[str]:
    """The pipeline's splitter on one block (`split_many`)."""
    return split_many([text])[0]


def _non_space(text: str) -> str:
    return "".join(text.split())


def align(text: str, pieces: Iterable[str]) -> list[tuple[int, int]]:
    """Offsets of `pieces` (the splitter's sentences, in order) within `text`.

    Each piece claims as many non-whitespace characters of `text` as it has. If the splitter
    changed any character, the block falls back to one sentence (never a wrong offset).
    Trailing text the splitter dropped joins the last sentence.
    """
    spans: list[tuple[int, int]] = []
    cursor, n = 0, len(text)
    for piece in pieces:
        stripped = piece.strip()
        if not stripped:
            continue
        # Fast path: the piece is a verbatim substring after only whitespace.
        found = text.find(stripped, cursor)
        if found >= 0 and not text[cursor:found].strip():
            spans.append((found, found + len(stripped)))
            cursor = found + len(stripped)
            continue
        want = len(_non_space(stripped))
        while cursor < n and text[cursor].isspace():
            cursor += 1
        start, seen = cursor, 0
        while cursor < n and seen < want:
            if not text[cursor].isspace():
                seen += 1
            cursor += 1
        if seen < want or _non_space(text[start:cursor]) != _non_space(stripped):
            return _whole(text)
        spans.append((start, cursor))
    if text[cursor:].strip():
        if not spans:
            return _whole(text)
        spans[-1] = (spans[-1][0], len(text.rstrip()))
    return spans


def _whole(text: str) -> list[tuple[int, int]]:
    stripped = text.strip()
    if not stripped:
        return []
    start = len(text) - len(text.lstrip())
    return [(start, start + len(stripped))]


def segment(clean_text: str, blocks: list[Block], splitter: Splitter | None = None) -> list[Span]:
    """Sentence spans of every block, in document order (by `splitter`, or the pipeline's
    `split_many` over all the blocks at once)."""
    texts = [clean_text[block.char_start : block.char_end] for block in blocks]
    split = split_many(texts) if splitter is None else [splitter(text) for text in texts]
    spans: list[Span] = []
    for block, text, pieces in zip(blocks, texts, split):
        for start, end in align(text, pieces):
            spans.append(Span(block.index, block.char_start + start, block.char_start + end))
    return spans
