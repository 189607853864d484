"""Decode: the bytes of one raw file to text, with the encoding used, or a reject.

Takes bytes and the file's raw path; gives (text, encoding) or a `Reject` naming the file and
the reason (empty, binary, undecodable, an overlong line). UTF-8 and BOMs first; legacy code
pages through charset detection (charset-normalizer), accepted only when plausible.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

import charset_normalizer

from flows.stages.records import Reject, sha256_hex
from flows.stages.rules import rules

# File signatures of common binary formats saved under a text name.
_MAGIC = [
    (b"%PDF-", "a PDF document"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x7fELF", "an ELF executable"),
]
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


def _sniff_binary(data: bytes) -> str | None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return what
    return None


def _plausible_western(text: str, max_share: float) -> bool:
    """True when non-ASCII letters are a small minority: a Western text in a legacy code page.

    A Cyrillic or Greek text decoded as cp1252 is mostly accented Latin letters; a French,
    German or English one has a few per hundred letters.
    """
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    odd = sum(1 for c in letters if ord(c) > 127)
    if odd / len(letters) > max_share:
        return False
    return all(unicodedata.category(c)[0] != "C" for c in text if ord(c) > 127)


def decode(data: bytes, raw_path: str, check_lines: bool = True) -> tuple[str, str] | Reject:
    """Bytes -> (text, encoding), or a Reject naming the file and the reason.

    `check_lines` rejects text with an overlong line (not prose); markup such as HTML is
    checked after extraction instead."""
    limits = rules()["decode"]
    sha, size = sha256_hex(data), len(data)

    def reject(kind: str, why: str) -> Reject:
        return Reject(raw_path, kind, f"{raw_path}: {why}", sha, size)

    if not data:
        return reject("empty", "file is empty (0 bytes)")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError as exc:
                return reject("undecodable", f"has a {encoding} byte-order mark but {exc.reason}")
            break
    else:
        what = _sniff_binary(data)
        if what:
            return reject("binary", f"is {what}, not text")
        if b"\x00" in data:
            decoded = _first_clean_decode(data, _wide_codecs(data))
            if decoded is None:
                return reject("binary", "contains NUL bytes: binary data, not text")
            text, encoding = decoded
        elif b"\x1b$" in data or b"\x1b(" in data:  # ISO-2022: 7-bit, yet not ASCII text
            decoded = _first_clean_decode(data, _ISO2022_CODECS)
            if decoded is None:
                return reject("undecodable", "has ISO-2022 escapes but no ISO-2022 codec reads it")
            text, encoding = decoded
        else:
            try:
                text, encoding = data.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                mostly = _decode_mostly_utf8(data, limits["max_invalid_utf8_share"])
                text, encoding = mostly or _decode_legacy(data, limits)
                if text is None:
                    return reject("undecodable", f"is not UTF-8 and no character set fits ({encoding})")
    if not text.strip():
        return reject("empty", "contains only whitespace")
    too_long = overlong_line(text) if check_lines else None
    if too_long:
        return reject("line_too_long", too_long)
    return text, encoding


def overlong_line(text: str) -> str | None:
    """Why a text is not prose when it has a line over the limit; None when it has none."""
    limit = rules()["decode"]["max_line_chars"]
    if len(text) > limit:
        longest = max(map(len, text.splitlines()))
        if longest > limit:
            return f"has a line of {longest} characters, over the limit of {limit} (rules.toml): not prose"
    return None


# A well-formed multi-byte UTF-8 character (what a legacy code page almost never produces).
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_UTF8_SURROGATE = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")  # CESU-8 / WTF-8: never valid UTF-8
_REPLACEMENT = "\ufffd".encode("utf-8")
# An invalid byte, escaped by Python as U+DC80..U+DCFF, read as cp1252 where cp1252 has it.
_ESCAPED_BYTE_AS_CP1252 = {
    0xDC00 + byte: bytes([byte]).decode("cp1252", errors="replace") for byte in range(0x80, 0x100)
}


def _decode_mostly_utf8(data: bytes, max_invalid_share: float) -> tuple[str, str] | None:
    """UTF-8 text with a few invalid bytes: a line pasted from a cp1252 source, a broken
    character. It has real multi-byte UTF-8 characters, and at most `max_invalid_share` of its
    bytes are invalid; each invalid byte is read as cp1252 (U+FFFD where cp1252 has nothing),
    encoded surrogates become U+FFFD. Encoding label: "utf-8+cp1252"."""
    if not _UTF8_MULTIBYTE.search(data):
        return None
    data = _UTF8_SURROGATE.sub(_REPLACEMENT, data)
    text = data.decode("utf-8", errors="surrogateescape")
    invalid = sum(1 for c in text if "\udc80" <= c <= "\udcff")
    if invalid > max_invalid_share * len(data):
        return None
    return text.translate(_ESCAPED_BYTE_AS_CP1252), "utf-8+cp1252"


def _wide_codecs(data: bytes) -> tuple[str, ...]:
    """UTF-32/16 codecs the NUL bytes make plausible, without a byte-order mark: text in
    those encodings has NULs in a regular pattern (a NUL high byte for every Latin letter),
    ASCII sprinkled with NULs does not, and is binary."""
    nul_at = [data[offset::4].count(0) / max(1, len(data[offset::4])) for offset in range(4)]
    even, odd = (nul_at[0] + nul_at[2]) / 2, (nul_at[1] + nul_at[3]) / 2
    found = []
    if min(nul_at[2], nul_at[3]) > 0.9:
        found.append("utf-32-le")
    if min(nul_at[0], nul_at[1]) > 0.9:
        found.append("utf-32-be")
    if odd > 0.1 and even < 0.01:  # NUL high bytes of ASCII letters, spaces, digits
        found.append("utf-16-le")
    if even > 0.1 and odd < 0.01:
        found.append("utf-16-be")
    return tuple(found)

_ISO2022_CODECS = ("iso2022_jp_2", "iso2022_kr")


def _first_clean_decode(data: bytes, codecs_to_try: tuple[str, ...]) -> tuple[str, str] | None:
    """The first codec that decodes strictly to text with hardly any control characters."""
    for codec in codecs_to_try:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for c in text if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn")
                       and c not in "\n\r\t")
        if text and controls / len(text) < 0.01:
            return text, codec
    return None


def _has_controls(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" and c not in "\n\r\t\f" for c in text)


def _decode_legacy(data: bytes, limits: dict) -> tuple[str | None, str]:
    """A non-UTF-8 text: (text, encoding), or (None, why not).

    A guess that other, equally plausible code pages would read differently is not a decode
    but a coin toss: such files are rejected as ambiguous rather than stored with wrong letters.
    """
    matches = list(charset_normalizer.from_bytes(data))
    if not matches:
        return None, "charset detection found no candidate"
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    if (
        western is not None
        and any(m.encoding == "cp1252" for m in matches)
        and _plausible_western(western, limits["max_non_ascii_letter_share"])
    ):
        return western, "cp1252"
    best = matches[0]
    if best.chaos > limits["max_chaos"]:
        return None, f"best guess {best.encoding} reads as noise (chaos {best.chaos:.2f})"
    text = str(best)
    rivals = [
        m.encoding for m in matches[1:]
        if m.chaos <= best.chaos + limits["rival_chaos_margin"]
        and m.coherence >= best.coherence - limits["rival_coherence_margin"]
        and str(m) != text
        and not _has_controls(str(m))  # a reading with C1 controls is no real rival
    ]
    if rivals:
        return None, f"ambiguous: reads as {best.encoding} or, differently, as {', '.join(rivals[:3])}"
    return text, best.encoding
