"""Arbitrary input through decode, clean, segment and language: nothing escapes but a reject,
and the accounting and offsets invariants hold."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows import language
from flows.clean import clean
from flows.ingest import decode
from flows.pipeline import process_document
from flows.records import DocMeta, RawFile, Reject, sha256_hex
from flows.segment import segment
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
    assert_document_rows(process_document(raw, data))
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


# (check, strategy) pairs: the tests below, and benchmarks/fuzz.py at high example counts.
PROPERTIES = [(check_text, documents), (check_bytes, st.binary(max_size=2000)), (check_bytes, encoded_documents)]


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
