"""Segment: blocks of clean text -> sentence spans with exact offsets.

Takes the clean text and its blocks; gives `Span`s (block index, char_start, char_end) into the
clean text. Sentences never cross blocks, are never empty, keep the original characters, and
together cover every non-whitespace character of every block exactly once.

Splitting, chosen by measurement (benchmarks/splitters.py, gold set in tests/fixtures):
two fast splitters, nupunkt and blingfire, run on every block; where they agree their answer
stands, where they disagree the block is "hard" and syntok (the most accurate on the hard
cases, and much slower) decides. Where blingfire's cuts are all plain (see `plain_cuts`), nupunkt
would agree, so blingfire's answer stands alone. The libraries propose sentence strings; `align` maps them back onto
the block, so a splitter that trims or collapses whitespace can never shift an offset.
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Callable, Iterable
from functools import cache

import blingfire
import nupunkt
import pysbd
from syntok import segmenter as syntok_segmenter

from flows.stages import fastpaths
from flows.stages.records import Block, Span

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


def _non_space_pieces(pieces: list[str]) -> list[str]:
    return ["".join(piece.split()) for piece in pieces]


# Characters at which any of the three splitters may end a sentence. A block with none of them
# before its final run of closing punctuation is one sentence for all three, so none is run.
_BOUNDARY = re.compile(r"[.!?…;:\n\r\u2028\u2029。！？‼⁇⁈⁉]")
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
    same places, so neither it nor syntok is run (measured: 0 differences on 21,500 blocks
    of BBC text and the sample, 64% of the blocks with more than one sentence)."""
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


def split_sentences(text: str) -> list[str]:
    """The pipeline's splitter: nupunkt where blingfire agrees, syntok where they differ."""
    if fastpaths.enabled() and one_sentence(text):
        return [text.strip()] if text.strip() else []
    blingfire_pieces = blingfire_split(text)
    if fastpaths.enabled() and plain_cuts(blingfire_pieces):
        return blingfire_pieces
    fast = nupunkt_split(text)
    if _non_space_pieces(fast) == _non_space_pieces(blingfire_pieces):
        return fast
    return syntok_split(text)


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


def segment(clean_text: str, blocks: list[Block], splitter: Splitter = split_sentences) -> list[Span]:
    """Sentence spans of every block, in document order."""
    spans: list[Span] = []
    for block in blocks:
        block_text = clean_text[block.char_start : block.char_end]
        for start, end in align(block_text, splitter(block_text)):
            spans.append(Span(block.index, block.char_start + start, block.char_start + end))
    return spans
