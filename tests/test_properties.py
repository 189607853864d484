"""Arbitrary input through decode, clean, segment and language: nothing escapes but a reject,
and the accounting and offsets invariants hold."""

import gzip
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.stages import language
from flows.stages.clean import clean
from flows.stages.decode import decode
from flows.stages.document import process_file
from flows.stages.records import DocMeta, RawFile, Reject, sha256_hex
from flows.stages.segment import segment
from tests.invariants import assert_document_rows, assert_lines_accounted, assert_sentences_cover

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that exercises the rules: real chrome lines, bullets, quotes, odd spaces, marks, RTL.
pieces = st.sampled_from([
    "Comment by Alice", "Leave a comment", "3 Comments so far", "Public domain", "Issue 2550",
    "Sign up for our daily email update", "• item", "“Quoted.”", "\u00a0", "\u200b", "\u00ad",
    "e\u0301", "👍🏽", "مرحبا بالعالم", "Dr. Smith", "…", "\r\n", "\r", "\n\n", "Mr.", "1.", "\x00",
    "Ã©", "&amp;", "Bolshevikhad", " ", "\t", ".", "?", "Das ist gut.",
])
documents = st.lists(st.one_of(pieces, st.text(max_size=40)), max_size=40).map("".join)


def check_text(text: str) -> None:
    cleaned = clean(text)
    assert_lines_accounted(text, cleaned)
    spans = segment(cleaned.clean_text, cleaned.blocks)
    assert_sentences_cover(cleaned.clean_text, spans)
    _, langs = language.assign(cleaned.clean_text, cleaned.blocks, spans)
    assert len(langs) == len(spans)


def check_bytes(data: bytes) -> None:
    raw = RawFile("x.txt", sha256_hex(data), len(data), DocMeta("src"))
    assert_document_rows(process_file(raw, data))
    decoded = decode(data, "x.txt")
    assert isinstance(decoded, Reject) or isinstance(decoded[0], str)


# Bytes that look like scraped text: document-like text in the encodings scrapes come in, with
# some of its bytes overwritten by noise (mixed encodings, truncation, binary junk).
encoded_documents = st.tuples(
    documents, st.sampled_from(["utf-8", "utf-16", "utf-16-le", "cp1252", "latin-1", "utf-8-sig"]),
    st.lists(st.tuples(st.integers(0, 4000), st.binary(min_size=1, max_size=4)), max_size=4),
).map(lambda t: _noisy(t[0].encode(t[1], errors="replace"), t[2]))


def _noisy(data: bytes, patches: list[tuple[int, bytes]]) -> bytes:
    for at, noise in patches:
        at = min(at, len(data))
        data = data[:at] + noise + data[at + len(noise):]
    return data


def check_file(named: tuple[str, bytes]) -> None:
    name, data = named
    assert_document_rows(process_file(RawFile(name, sha256_hex(data), len(data), DocMeta("src")), data))


# Files in the web formats, well-formed or not: HTML pages, JSON lines and WARC records around
# document-like text, some gzipped, some cut short, some with noise patched in.
html_pages = st.lists(st.tuples(st.sampled_from(["p", "div", "li", "h2", "nav", "footer", "script"]), documents),
                      max_size=6).map(lambda parts: "<html><body>" + "".join(
                          f"<{tag}>{text}</{tag}>" for tag, text in parts) + "</body></html>")
json_lines = st.lists(st.one_of(
    st.fixed_dictionaries({"text": documents}, optional={"url": st.text(max_size=30), "date": st.text(max_size=20)}),
    st.fixed_dictionaries({"html": html_pages}), st.lists(st.integers(), max_size=2), st.text(max_size=20),
), max_size=5).map(lambda objs: "\n".join(json.dumps(o, ensure_ascii=False) for o in objs).encode())


def _warc(pages: list[str]) -> bytes:
    from tests.test_formats import small_warc

    return small_warc(*(page.encode() for page in pages))


web_files = st.tuples(
    st.sampled_from(["html", "jsonl", "warc"]), st.booleans(), st.integers(0, 200),
    st.lists(st.tuples(st.integers(0, 4000), st.binary(min_size=1, max_size=4)), max_size=2),
    html_pages, json_lines, st.lists(html_pages, max_size=3),
).map(lambda t: _web_file(*t))


def _web_file(fmt, zipped, cut, patches, page, lines, pages) -> tuple[str, bytes]:
    data = {"html": page.encode(), "jsonl": lines, "warc": _warc(pages)}[fmt]
    data = _noisy(data, patches)
    if zipped:
        data = gzip.compress(data, mtime=0)
    return f"x.{fmt}{'.gz' if zipped else ''}", data[: len(data) - cut] if cut < len(data) else data


# (check, strategy) pairs: the tests below, and benchmarks/fuzz.py at high example counts.
PROPERTIES = [(check_text, documents), (check_bytes, st.binary(max_size=2000)), (check_bytes, encoded_documents),
              (check_file, web_files)]


@SETTINGS
@given(documents)
def test_clean_segment_language_on_arbitrary_text(text):
    check_text(text)


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_become_a_document_or_a_reject(data):
    check_bytes(data)


@SETTINGS
@given(encoded_documents)
def test_scrape_like_bytes_become_a_document_or_a_reject(data):
    check_bytes(data)


@SETTINGS
@given(web_files)
def test_web_format_files_become_documents_and_rejects(named):
    check_file(named)
