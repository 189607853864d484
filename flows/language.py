"""Language: langdetect, seeded, per document, per block and per sentence.

Takes texts; gives `Lang(code, prob)`. Short text is unreliable, so blocks inherit the
document's language below a letter count and sentences inherit their block's unless they are
long enough and confidently different (thresholds in rules.toml [language]). Text without
letters gets Lang(None, None).
"""

from __future__ import annotations

from langdetect import DetectorFactory, detect_langs
from langdetect.lang_detect_exception import LangDetectException

from .records import Lang
from .rules import rules

# Seeded at import, i.e. in every worker process before its first call: langdetect samples
# n-grams at random, and an unseeded detector can answer differently on the same text.
DetectorFactory.seed = 0

NO_LANGUAGE = Lang(None, None)


def letter_count(text: str) -> int:
    return sum(1 for c in text if c.isalpha())


def detect(text: str) -> Lang:
    """Most probable language of `text`; NO_LANGUAGE when it has no letters."""
    if not letter_count(text):
        return NO_LANGUAGE
    try:
        best = detect_langs(text)[0]
    except LangDetectException:
        return NO_LANGUAGE
    return Lang(best.lang, round(best.prob, 6))


def block_language(text: str, document: Lang) -> Lang:
    if not letter_count(text):
        return NO_LANGUAGE
    if letter_count(text) < rules()["language"]["block_min_letters"]:
        return document
    return detect(text)


def sentence_language(text: str, block: Lang) -> Lang:
    settings = rules()["language"]
    letters = letter_count(text)
    if not letters:
        return NO_LANGUAGE
    if letters < settings["sentence_min_letters"]:
        return block
    own = detect(text)
    if own.code != block.code and own.prob is not None and own.prob >= settings["sentence_min_prob"]:
        return own
    return block
