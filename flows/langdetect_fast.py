"""langdetect's detection, computed faster, with the same answers to the last bit.

Takes a text; gives langdetect's `detect_langs` list (languages over 0.1, most probable first),
for the profiles and seed of langdetect's global factory.

Why this exists: langdetect is the project's detector, but its pure-Python loops cost about
5 ms per document (measured in benchmarks/language_cost.py), more than all other stages
together. The algorithm is unchanged; only its loops are replaced:
- text preparation with regular expressions instead of character-by-character appends;
- n-grams per distinct word, cached (words repeat, so most are looked up, not recomputed);
- the probability updates as NumPy rows, five updates (one convergence check) at a time.
Every floating-point operation is the same one in the same order (multiplications in sequence,
the normalising sum as a sequential accumulate, never a pairwise one), and the random draws
come from the same seeded `random.Random` in the same order, so the probabilities are
bit-identical; tests/test_language.py compares both on real and generated text.
"""

from __future__ import annotations

import json
import random
import re
from functools import cache
from pathlib import Path

import numpy as np
from langdetect import DetectorFactory, detector_factory
from langdetect.detector import Detector
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.language import Language
from langdetect.utils.ngram import NGram

_SPACE_RUN = re.compile(r"  +")
_LATIN = re.compile(r"[A-z]")  # langdetect's own test: 'A' <= ch <= 'z'
_NON_LATIN = re.compile(r"[\u0300-\U0010ffff]")
_WORD_CACHE_LIMIT = 100_000


class _Normalised(dict):
    """str.translate table computing NGram.normalize once per distinct character."""

    def __missing__(self, codepoint: int) -> str:
        value = self[codepoint] = NGram.normalize(chr(codepoint))
        return value


class FastDetector:
    """langdetect's profiles as one matrix (n-gram row x language column, ~40 MB) instead of
    langdetect's dict of float lists (~150 MB per process)."""

    def __init__(self, langlist: list[str], row_of: dict[str, int], matrix: np.ndarray, seed: int | None) -> None:
        self.langlist, self.row_of, self.matrix, self.seed = langlist, row_of, matrix, seed
        self._normalised = _Normalised()
        self._inner_word_rows: dict[str, list[int]] = {}  # word -> rows, for words followed by a space

    # --- Detector.append + cleaning_text -----------------------------------------------------

    @staticmethod
    def prepare(text: str) -> str:
        text = Detector.URL_RE.sub(" ", text)
        text = Detector.MAIL_RE.sub(" ", text)
        text = NGram.normalize_vi(text)
        text = _SPACE_RUN.sub(" ", text[: 10_000])  # Detector.max_text_length, then runs of spaces
        # langdetect compares unicode_block() (an int) with a string here, so every character
        # from U+0300 up counts as non-Latin; kept as it is, the answers must not change.
        if not text.isascii():
            non_latin = _NON_LATIN.subn("", text)[1]
            if non_latin and _LATIN.subn("", text)[1] * 2 < non_latin:
                text = _LATIN.sub("", text)
        return text

    # --- Detector._extract_ngrams ------------------------------------------------------------

    def ngram_rows(self, text: str) -> list[int]:
        words = text.translate(self._normalised).split(" ")
        rows: list[int] = []
        inner, cache = self._inner_word_rows, self._inner_word_rows.get
        for word in words[:-1]:  # each followed by a space
            if word:
                found = cache(word)
                if found is None:
                    found = self._rows_of_word(word, True)
                    if len(inner) < _WORD_CACHE_LIMIT:
                        inner[word] = found
                rows.extend(found)
        if words[-1]:  # the text's last word, with no space after it
            rows.extend(self._rows_of_word(words[-1], False))
        return rows

    def _rows_of_word(self, word: str, space_after: bool) -> list[int]:
        """NGram's rolling buffer over ' ' + word (+ ' '): the same grams in the same order."""
        chars = " " + word + (" " if space_after else "")
        rows, capital = [], False
        for k in range(1, len(chars)):
            ch = chars[k]
            if ch.isupper():
                if chars[k - 1].isupper():
                    capital = True
            else:
                capital = False
            if capital:
                continue
            grams = chars[max(0, k - 2) : k + 1]
            for n in (1, 2, 3):
                if len(grams) < n:
                    break
                gram = grams[-n:]
                if gram != " " and gram in self.row_of:
                    rows.append(self.row_of[gram])
        return rows

    # --- Detector._detect_block --------------------------------------------------------------

    def probabilities(self, text: str) -> list[Language]:
        ngrams = self.ngram_rows(self.prepare(text))
        if not ngrams:
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        n_langs, n_trial = len(self.langlist), 7
        langprob = np.zeros(n_langs)
        rng = random.Random()
        rng.seed(self.seed)
        draw = rng._randbelow  # what rng.choice calls: same draws, one call less
        n_ngrams, matrix = len(ngrams), self.matrix
        block = np.empty((6, n_langs))
        for _ in range(n_trial):
            prob = np.full(n_langs, 1.0 / n_langs)
            alpha = Detector.ALPHA_DEFAULT + rng.gauss(0.0, 1.0) * Detector.ALPHA_WIDTH
            weight = alpha / Detector.BASE_FREQ
            # Iteration 0, then blocks of five: langdetect checks convergence when i % 5 == 0.
            prob *= weight + matrix[ngrams[draw(n_ngrams)]]
            i = 0
            while True:
                total = np.add.accumulate(prob)[-1]  # sequential, as Python's sum()
                prob = prob / total
                if prob.max() > Detector.CONV_THRESHOLD or i >= Detector.ITERATION_LIMIT:
                    break
                block[0] = prob
                np.add(matrix[[ngrams[draw(n_ngrams)] for _ in range(5)]], weight, out=block[1:])
                prob = np.multiply.reduce(block, axis=0)  # ((p * r1) * r2) ... in order
                i += 5
            langprob += prob / n_trial
        result = [Language(lang, p) for lang, p in zip(self.langlist, langprob.tolist())
                  if p > Detector.PROB_THRESHOLD]
        result.sort(reverse=True)
        return result


def mean_log_margin(text: str, code: str) -> float:
    """How far `code` leads every other language, in nats per n-gram, scoring each n-gram of
    `text` by langdetect's profiles (with its default smoothing); -inf when it cannot say."""
    fast = detector()
    rows = fast.ngram_rows(fast.prepare(text))
    if not rows or code not in fast.langlist:
        return float("-inf")
    scores = np.log(fast.matrix[rows] + Detector.ALPHA_DEFAULT / Detector.BASE_FREQ).sum(axis=0)
    index = fast.langlist.index(code)
    others = np.delete(scores, index)
    return float((scores[index] - others.max()) / len(rows))


def load_profiles(folder: Path) -> tuple[list[str], dict[str, int], np.ndarray]:
    """Languages, n-gram rows and probabilities exactly as DetectorFactory.load_json_profile
    computes them from the same files, read in sorted order (as `language` loads langdetect)."""
    profiles = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.iterdir()) if p.is_file()]
    row_of: dict[str, int] = {}
    for profile in profiles:
        for word in profile["freq"]:
            row_of.setdefault(word, len(row_of))
    matrix = np.zeros((len(row_of), len(profiles)))
    for index, profile in enumerate(profiles):
        n_words = profile["n_words"]
        for word, freq in profile["freq"].items():
            if 1 <= len(word) <= 3:
                matrix[row_of[word], index] = 1.0 * freq / n_words[len(word) - 1]
    return [p["name"] for p in profiles], row_of, matrix


@cache
def detector() -> FastDetector:
    """The fast detector over langdetect's own profile files, with langdetect's seed."""
    return FastDetector(*load_profiles(Path(detector_factory.PROFILES_DIRECTORY)), DetectorFactory.seed)


def detect_langs(text: str) -> list[Language]:
    return detector().probabilities(text)
