"""Segment: blocks of clean text -> sentence spans with exact offsets.

Takes the clean text and its blocks; gives `Span`s (block index, char_start, char_end) into the
clean text. Sentences never cross blocks, are never empty, keep the original characters, and
together cover every non-whitespace character of every block exactly once.

The splitter library proposes sentence strings; `align` maps them back onto the block by
counting non-whitespace characters, so a splitter that trims or collapses whitespace can never
shift an offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache

import pysbd

from .records import Block, Span

Splitter = Callable[[str], list[str]]


@cache
def _pysbd() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False, char_span=False)


def pysbd_split(text: str) -> list[str]:
    return _pysbd().segment(text)


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
        want = len(_non_space(piece))
        if want == 0:
            continue
        while cursor < n and text[cursor].isspace():
            cursor += 1
        start, seen = cursor, 0
        while cursor < n and seen < want:
            if not text[cursor].isspace():
                seen += 1
            cursor += 1
        if seen < want or _non_space(text[start:cursor]) != _non_space(piece):
            return _whole(text)
        spans.append((start, cursor))
    rest = text[cursor:]
    if rest.strip():
        if not spans:
            return _whole(text)
        end = len(text.rstrip())
        spans[-1] = (spans[-1][0], end)
    return spans


def _whole(text: str) -> list[tuple[int, int]]:
    stripped = text.strip()
    if not stripped:
        return []
    start = len(text) - len(text.lstrip())
    return [(start, start + len(stripped))]


def segment(clean_text: str, blocks: list[Block], splitter: Splitter = pysbd_split) -> list[Span]:
    """Sentence spans of every block, in document order."""
    spans: list[Span] = []
    for block in blocks:
        block_text = clean_text[block.char_start : block.char_end]
        for start, end in align(block_text, splitter(block_text)):
            spans.append(Span(block.index, block.char_start + start, block.char_start + end))
    return spans
