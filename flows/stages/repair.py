"""Repair: character-level fixes of one line of text, each one counted or recorded.

Takes a raw line; gives the repaired line. Three kinds of edit, in order:
ftfy's encoding repair (mojibake; legitimate typography is kept), normalisation (NFC, odd
spaces to a plain space, zero-width characters, soft hyphens and control characters dropped),
and splitting words glued by lost markup ("Bolshevikhad" -> "Bolshevik had") when wordfreq
makes the split certain.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

import ftfy
import wordfreq
from rapidfuzz.distance import LCSseq

from flows.stages import fastpaths
from flows.stages.rules import rules

# Encoding repair only: curly quotes, ligatures, full-width forms and line breaks stay as written.
_FTFY_CONFIG = ftfy.TextFixerConfig(
    uncurl_quotes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    fix_line_breaks=False,
    remove_control_chars=False,  # done, and counted, by normalise() below
    normalization="NFC",
    explain=False,
)
_ODD_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\t\u2028\u2029\u0085\x0b\x0c]")
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")  # ZWJ/ZWNJ kept: emoji and scripts need them
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_MULTI_SPACE = re.compile(" {2,}")
_TOKEN = re.compile(r"(?<![\w'’-])([A-Za-z][a-z]+)(?![\w'’-])")


def changed_chars(before: str, after: str) -> int:
    """How many characters differ between two versions of a line (0 when equal): the longer
    one's length less their longest common subsequence, the fewest changes that explain it.

    rapidfuzz computes the subsequence in C, bit-parallel, where difflib's SequenceMatcher grows
    faster than the square of the length: a one-line page of mojibake would stall a worker.
    """
    if before == after:
        return 0
    return max(len(before), len(after)) - LCSseq.similarity(before, after)


# What ftfy's fixers (with _FTFY_CONFIG) act on besides mojibake: HTML entities, C1 controls,
# surrogates, terminal escapes.
_FTFY_TRIGGERS = re.compile("[&\x1b\x80-\x9f\ud800-\udfff]")


def ftfy_can_change(line: str) -> bool:
    """False when no ftfy fix can apply, so the call is skipped (same result, much faster).

    With our config ftfy changes a line only through: its encoding fix, which starts by
    returning text unchanged unless ftfy's own `is_bad` finds a mojibake signature; HTML
    unescaping ('&'); the C1, surrogate and terminal-escape fixers; and NFC.
    """
    if line.isascii():
        return "&" in line or "\x1b" in line
    return bool(_FTFY_TRIGGERS.search(line) or ftfy.badness.is_bad(line)
                or not unicodedata.is_normalized("NFC", line))


def fix_encoding(line: str) -> str:
    if fastpaths.enabled() and not ftfy_can_change(line):
        return line
    return ftfy.fix_text(line, _FTFY_CONFIG)


def normalise(line: str) -> str:
    if fastpaths.enabled() and line.isascii() and line.isprintable():
        # Nothing but runs of spaces can change in printable ASCII: no invisible, control or
        # odd-space character is printable ASCII, and ASCII is already NFC.
        return (_MULTI_SPACE.sub(" ", line) if "  " in line else line).strip()
    text = _INVISIBLE.sub("", line)
    text = _CONTROL.sub("", text)
    text = _ODD_SPACES.sub(" ", text)
    text = _MULTI_SPACE.sub(" ", text).strip()
    return unicodedata.normalize("NFC", text)


def normalise_line(line: str) -> tuple[str, int, int]:
    """A raw line -> (text, chars changed by ftfy, chars changed by normalisation)."""
    repaired = fix_encoding(line)
    text = normalise(repaired)
    normalised = changed_chars(repaired.strip(), text) if text != repaired else 0
    return text, changed_chars(line, repaired), normalised


# --- glued words -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GlueFix:
    start: int  # offset of the token in the line before the fix
    before: str
    after: str


@cache
def _glue_settings() -> tuple[frozenset[str], int, float, int]:
    spec = rules()["glued_words"]
    return (frozenset(spec["function_words"]), spec["content_min_chars"],
            spec["content_min_zipf"], spec["min_token_chars"])


@lru_cache(maxsize=100_000)  # bounded: a big corpus has millions of distinct tokens
def _zipf(word: str) -> float:
    return wordfreq.zipf_frequency(word, "en")


@cache
def _known_words() -> frozenset[str]:
    """Lower-case ASCII words in wordfreq's English list: a token among them has zipf > 0
    (wordfreq's floor is zipf 1.0), so it can never be split and need not be looked at."""
    return frozenset(w for w in wordfreq.get_frequency_dict("en") if w.isascii() and w.isalpha() and w.islower())


def split_glued_token(token: str) -> str | None:
    """'Bolshevikhad' -> 'Bolshevik had'; None unless exactly one split is certain."""
    function_words, content_min_chars, content_min_zipf, min_chars = _glue_settings()
    lower = token.lower()
    if len(token) < min_chars or _zipf(lower) > 0:
        return None
    splits = []
    for cut in range(1, len(token)):
        head, tail = lower[:cut], lower[cut:]
        content = tail if head in function_words else head if tail in function_words else None
        if content and len(content) >= content_min_chars and _zipf(content) >= content_min_zipf:
            splits.append(cut)
    if len(splits) != 1:
        return None
    return token[: splits[0]] + " " + token[splits[0] :]


@cache
def _long_token() -> re.Pattern:
    """_TOKEN for tokens of at least min_token_chars letters only. A token is a whole word
    between delimiters, so this finds exactly _TOKEN's matches that long, with no regex step
    over the short words (the scan took 60% of the glued-word search). The delimiter before
    the word is checked after its first letter, so the pattern starts with a class, which the
    regex engine scans for quickly."""
    min_chars = _glue_settings()[3]
    return re.compile(rf"[A-Za-z](?<![\w'’-][A-Za-z])[a-z]{{{max(min_chars - 1, 1)},}}(?![\w'’-])")


def split_glued_words(line: str) -> tuple[str, list[GlueFix]]:
    skip_known = fastpaths.enabled()
    known, min_chars = _known_words(), _glue_settings()[3]
    fixes = []
    for match in (_long_token() if skip_known else _TOKEN).finditer(line):
        token = match[0]  # _TOKEN's lookarounds match nothing: its group 1 is the whole match
        if skip_known and (len(token) < min_chars or token.lower() in known):
            continue  # split_glued_token would say None: too short, or a known word
        split = split_glued_token(token)
        if split:
            fixes.append(GlueFix(match.start(), token, split))
    for fix in reversed(fixes):
        line = line[: fix.start] + fix.after + line[fix.start + len(fix.before) :]
    return line, fixes
