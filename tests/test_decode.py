"""Decoding raw bytes: UTF-8, BOMs, legacy code pages, and rejects with reasons."""

import codecs

import pytest

from flows.stages.decode import decode
from flows.stages.records import Reject


def test_utf8_decodes_as_is():
    assert decode("Caf\u00e9 \u201cquoted\u201d".encode(), "a.txt") == ("Caf\u00e9 \u201cquoted\u201d", "utf-8")


def test_utf8_bom_is_dropped():
    assert decode(codecs.BOM_UTF8 + b"Hello", "a.txt") == ("Hello", "utf-8-sig")


def test_utf16_with_bom():
    assert decode("Gr\u00fc\u00dfe aus Berlin".encode("utf-16"), "a.txt") == ("Gr\u00fc\u00dfe aus Berlin", "utf-16")


def test_single_latin1_byte_reads_as_cp1252():
    # As in the BBC corpus: one 0xA3 (pound sign) in otherwise ASCII text.
    data = b"The deal is worth \xa3600m to the club, the chairman said."
    assert decode(data, "a.txt") == ("The deal is worth \u00a3600m to the club, the chairman said.", "cp1252")


def test_cyrillic_cp1251_is_not_mistaken_for_western():
    text = "Москва — столица России, крупнейший город страны и её политический центр. " * 5
    decoded, encoding = decode(text.encode("cp1251"), "ru.txt")
    assert decoded == text
    assert encoding.replace("_", "-") in {"cp1251", "windows-1251"}


@pytest.mark.parametrize(
    "data, kind, reason",
    [
        (b"", "empty", "a.txt: file is empty (0 bytes)"),
        (b"  \n\t\n", "empty", "a.txt: contains only whitespace"),
        (b"%PDF-1.4\n...", "binary", "a.txt: is a PDF document, not text"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "binary", "a.txt: is a JPEG image, not text"),
        (b"\x1f\x8b\x08\x00", "binary", "a.txt: is gzip-compressed data, not text"),
        (b"abc\x00def", "binary", "a.txt: contains NUL bytes: binary data, not text"),
    ],
)
def test_bad_bytes_are_rejects_with_reasons(data, kind, reason):
    result = decode(data, "a.txt")
    assert isinstance(result, Reject)
    assert (result.error_kind, result.message) == (kind, reason)
    assert result.raw_bytes == len(data)


def test_undecodable_bytes_are_a_reject():
    data = bytes(range(0x80, 0x100)) * 8
    result = decode(data, "junk.txt")
    assert isinstance(result, Reject)
    assert result.error_kind == "undecodable"
    assert result.message.startswith("junk.txt: is not UTF-8 and no character set fits")


def test_an_ambiguous_legacy_encoding_is_a_reject_not_a_guess():
    # Czech in ISO-8859-2 reads equally well, and differently, as cp1250: no honest answer.
    text = "Příliš žluťoučký kůň úpěl ďábelské ódy. " * 6
    result = decode(text.encode("iso-8859-2"), "cz.txt")
    assert isinstance(result, Reject)
    assert result.error_kind == "undecodable"
    assert "ambiguous: reads as cp1250 or, differently, as" in result.message
    assert decode(text.encode("cp1250"), "cz.txt") == (text, "cp1250")


def test_western_latin1_text_decodes():
    text = "Ça me plaît beaucoup, élève à l'école où j'étais. " * 5
    assert decode(text.encode("latin-1"), "fr.txt") == (text, "cp1252")
