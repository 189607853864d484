"""Language: langdetect, seeded, per document, per block and per sentence.

Takes a clean text, its blocks and sentence spans; gives `Lang(code, prob)` for the document
and for every sentence. Short text is unreliable, so labels are inherited: a block takes the
document's language and a sentence its block's, unless the text is long enough and langdetect
is confidently different (thresholds in rules.toml [language]); the probability is that of
whichever detection the label came from. Text without letters gets Lang(None, None).

langdetect costs milliseconds a call whatever the length, so it is called only where the answer
can change a label: never on short text, not on text made largely of the parent language's most
common words (a cheap wordfreq test), and not where the parent language leads every other by a
clear margin on langdetect's own n-gram profiles (see rules.toml [language]).
"""

from __future__ import annotations

import re
import threading
from functools import cache
from pathlib import Path

import wordfreq
from langdetect import DetectorFactory, detect_langs
from langdetect import detector_factory
from langdetect.lang_detect_exception import LangDetectException

from . import fastpaths, langdetect_fast
from .records import Block, Lang, Span
from .rules import rules

# Seeded at import, i.e. in every worker process before its first call: langdetect samples
# n-grams at random, and an unseeded detector can answer differently on the same text.
DetectorFactory.seed = 0
_factory_lock = threading.Lock()


def load_langdetect_profiles() -> None:
    """Build langdetect's global factory, once, from its profiles in sorted order.

    Left to itself, langdetect loads them lazily on the first call without a lock (threads can
    detect with a half-loaded factory) and in directory-listing order (which varies between
    filesystems, and with it the last digits of every probability). Only the slow path needs
    the factory (about 150 MB); langdetect_fast reads the same files into a matrix.
    """
    with _factory_lock:
        if detector_factory._factory is not None and detector_factory._factory.langlist:
            return
        folder = Path(detector_factory.PROFILES_DIRECTORY)
        factory = DetectorFactory()
        factory.load_json_profile([p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()) if p.is_file()])
        detector_factory._factory = factory


NO_LANGUAGE = Lang(None, None)
_WORD = re.compile(r"\w+")


_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def letter_count(text: str) -> int:
    """How many characters of `text` are letters (str.isalpha)."""
    if text.isascii():  # the common case, counted in C
        return len(text) - len(text.encode("ascii").translate(None, _ASCII_LETTERS))
    return sum(map(str.isalpha, text))


def detect(text: str) -> Lang:
    """Most probable language of `text`; NO_LANGUAGE when it has no letters.

    With fast paths on, langdetect's answer is computed by langdetect_fast (bit-identical).
    """
    if not letter_count(text):
        return NO_LANGUAGE
    try:
        if fastpaths.enabled():
            best = langdetect_fast.detect_langs(text)[0]
        else:
            load_langdetect_profiles()
            best = detect_langs(text)[0]
    except LangDetectException:
        return NO_LANGUAGE
    return Lang(best.lang, round(best.prob, 6))


@cache
def _common_words(code: str) -> frozenset[str]:
    language = code.split("-")[0]  # langdetect's zh-cn / zh-tw are wordfreq's zh
    if language not in wordfreq.available_languages():
        return frozenset()
    return frozenset(wordfreq.top_n_list(language, 200))


def clearly_in(text: str, parent: Lang) -> bool:
    """True when `text` is made largely of the parent language's most common words."""
    common = _common_words(parent.code) if parent.code else frozenset()
    words = _WORD.findall(text.casefold())
    if not common or not words:
        return False
    share = sum(map(common.__contains__, words)) / len(words)
    return share >= rules()["language"]["parent_common_share"]


def inherit_or_detect(text: str, parent: Lang, min_letters: int, min_prob: float) -> Lang:
    """`parent`, unless `text` is long enough and confidently in another language."""
    letters = letter_count(text)
    if not letters:
        return NO_LANGUAGE
    if letters < min_letters:
        return parent
    if fastpaths.enabled() and parent.code and (
        clearly_in(text, parent)
        or langdetect_fast.mean_log_margin(text, parent.code) >= rules()["language"]["parent_min_margin"]
    ):
        return parent
    own = detect(text)
    if own.code is not None and own.code != parent.code and (own.prob or 0) >= min_prob:
        return own
    return parent


def assign(clean_text: str, blocks: list[Block], spans: list[Span]) -> tuple[Lang, list[Lang]]:
    """The document's language and one label per sentence span."""
    settings = rules()["language"]
    document = detect(clean_text)
    block_langs = {
        b.index: inherit_or_detect(clean_text[b.char_start : b.char_end], document,
                                   settings["block_min_letters"], settings["block_min_prob"])
        for b in blocks
    }
    labels = []
    for span in spans:
        block = blocks[span.block_index]
        parent = block_langs[block.index]
        if (span.char_start, span.char_end) == (block.char_start, block.char_end):
            labels.append(parent)  # a one-sentence block: the block's answer is the sentence's
            continue
        labels.append(inherit_or_detect(clean_text[span.char_start : span.char_end], parent,
                                        settings["sentence_min_letters"], settings["sentence_min_prob"]))
    return document, labels
