"""flows/stages/formats.py: HTML, JSON Lines, WARC and gzip, well-formed and malformed."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from flows.stages.formats import format_of, gunzip, html_markup, read_file
from flows.stages.records import PageMeta
from tests.conftest import ROOT, SAMPLE
from tests.make_web_sample import OUT as SAMPLE_WARC
from tests.make_web_sample import warc_bytes

RIVER = SAMPLE / "field_notes" / "river-notes.html"
RIVER_TEXT = (
    "Notes from the river\n"
    "The river rose two metres in a week. Farmers along the bank moved their animals to higher ground, "
    "and the ferry from Alcoutim stopped running on Tuesday.\n"
    "By Sunday the water had begun to fall. The mud it left behind was thick, grey and smelled faintly "
    "of iron; the older neighbours said they had not seen a flood like it since 1989.\n"
    "Nobody was hurt. The bakery lost a freezer, the school lost a week, and the heron that lives under "
    "the bridge seemed entirely unbothered.\n"
    "We saw the same thing upstream last spring. The council promised new embankments and then forgot about them.\n"
    "Thank you for writing this down. It helps to have a record of what happened, street by street.\n"
    "Buy cheap watches online, click here!"
)
PAGE = b"<html><head><title>T</title></head><body><article><p>%s</p></article></body></html>"
LONG = "A paragraph long enough for trafilatura to keep it as the main text of the page."


def messages(report) -> list[tuple[str, int | None, str]]:
    return [(r.error_kind, r.raw_record, r.message) for r in report.rejects]


def test_the_format_comes_from_the_name_without_gz():
    assert [format_of(p) for p in ("a.html", "b/C.HTM", "x.jsonl.gz", "y.warc.gz", "z.warc", "n.txt", "n", "t.gz")] == [
        "html", "html", "jsonl", "warc", "warc", "text", "text", "text"]


# --- gzip ------------------------------------------------------------------------------------


def test_gunzip_reads_every_member():
    assert gunzip(gzip.compress(b"one ") + gzip.compress(b"two"), 100) == (b"one two", None)


def test_gunzip_keeps_what_came_before_a_cut():
    data, problem = gunzip(gzip.compress(b"x" * 5000)[:-20], 10_000)
    assert problem[0] == "bad_gzip" and "cut off" in problem[1]
    assert set(data) <= {ord("x")}


def test_gunzip_stops_at_the_bound():
    data, problem = gunzip(gzip.compress(b"\0" * 1_000_000), 1000)
    assert len(data) == 1000
    assert problem == ("too_large", "decompresses to more than 1000 bytes (rules.toml [formats] max_decompressed_bytes)")


def test_a_truncated_gzip_text_file_is_a_reject():
    report = read_file("a.txt.gz", gzip.compress(b"Hello there. " * 200)[:-30])
    assert report.documents == []
    assert [(k, r) for k, r, _ in messages(report)] == [("bad_gzip", None)]
    assert messages(report)[0][2].startswith("a.txt.gz: gzip data is cut off after ")


def test_gzip_is_read_by_its_magic_bytes_whatever_the_name():
    report = read_file("notes.txt", gzip.compress("Plain words, compressed.".encode()))
    assert [d.text for d in report.documents] == ["Plain words, compressed."]


# --- HTML ------------------------------------------------------------------------------------


def test_html_main_text_comments_and_metadata():
    report = read_file("field_notes/river-notes.html", RIVER.read_bytes())
    assert report.rejects == [] and report.format == "html"
    (page,) = report.documents
    assert page.text == RIVER_TEXT
    assert page.comments_from_line == 5  # after the title line and three paragraphs
    assert (page.format, page.encoding, page.raw_record) == ("html", "utf-8", None)
    assert page.meta == PageMeta(title="Notes from the river", author="Ana Ribeiro", published="2026-03-01",
                                 url="https://example.org/blog/river-notes", site_name="Field Notes")


def test_gzipped_html_reads_the_same():
    plain = read_file("p.html", RIVER.read_bytes()).documents
    assert read_file("p.html.gz", gzip.compress(RIVER.read_bytes())).documents == plain


def test_html_encoding_from_its_meta_declaration():
    page = b'<html><head><meta charset="iso-8859-15"></head><body><p>' + "Prix : 10 € le café, servi chaud, tous les matins de la semaine.".encode("iso-8859-15") + b"</p></body></html>"
    (doc,) = read_file("p.html", page).documents
    assert doc.encoding == "iso8859-15"
    assert "10 € le café" in doc.text


def test_html_encoding_from_the_http_header_comes_before_detection():
    body = PAGE % "Ελληνικά γράμματα σε μια σελίδα που δεν δηλώνει τίποτα.".encode("iso-8859-7")
    assert html_markup(body, "p.html", "text/html; charset=ISO-8859-7")[1] == "iso8859-7"


def test_valid_utf8_wins_over_a_legacy_declaration():
    body = b'<html><head><meta charset="iso-8859-1"></head><body><p>' + "Déjà vu, naïve café owners.".encode() + b"</p></body></html>"
    markup, encoding = html_markup(body, "p.html")
    assert encoding == "utf-8" and "Déjà vu" in markup


def test_a_declaration_the_bytes_break_falls_back_to_detection():
    body = b'<html><head><meta charset="us-ascii"></head><body><p>' + "Déjà vu, naïve café owners.".encode("cp1252") + b"</p></body></html>"
    markup, encoding = html_markup(body, "p.html")
    assert encoding == "cp1252" and "Déjà vu" in markup


def test_html_without_a_body_is_a_reject():
    report = read_file("empty.html", b"<html><head><title>Only a title</title></head></html>")
    assert report.documents == []
    assert messages(report) == [("no_text", None, "empty.html: trafilatura found no main text "
                                                   "(no <body>, or only navigation and boilerplate)")]


def test_html_extraction_is_the_same_in_processes_with_different_hash_seeds():
    script = ("import sys, json; from flows.stages.formats import read_file; "
              "r = read_file('p.html', open(sys.argv[1], 'rb').read()); "
              "print(json.dumps([(d.text, d.meta.__dict__) for d in r.documents]))")
    outputs = {
        subprocess.run([sys.executable, "-c", script, str(RIVER)], capture_output=True, text=True, check=True, cwd=ROOT,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1 and RIVER_TEXT.split("\n")[1] in json.loads(outputs.pop())[0][0]


# --- JSON Lines ------------------------------------------------------------------------------


def jsonl(*lines: object) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


def test_jsonl_one_document_per_line_with_its_metadata():
    data = jsonl(
        {"text": "First post.\nSecond line.", "url": "https://e.org/1", "headline": "One",
         "authors": ["A. Writer", "B. Writer"], "date": "2024-05-06T07:08:09+02:00", "fetched_at": "2024-06-01T10:00:00+02:00"},
        {"content": "Second post.", "meta": {"url": "https://e.org/2"}},
    )
    report = read_file("feed.jsonl", data)
    assert report.rejects == []
    first, second = report.documents
    assert (first.text, first.raw_record, first.format, first.encoding) == ("First post.\nSecond line.", 1, "jsonl", "utf-8")
    assert first.meta == PageMeta(title="One", author="A. Writer, B. Writer", published="2024-05-06",
                                  url="https://e.org/1", fetched="2024-06-01T08:00:00")
    assert (second.text, second.raw_record, second.meta.url) == ("Second post.", 2, None)


def test_jsonl_nested_field_names(monkeypatch):
    from flows.stages import rules as rules_module

    spec = dict(rules_module.rules()["formats"]["jsonl"], url=["meta.url"])
    formats = dict(rules_module.rules()["formats"], jsonl=spec)
    monkeypatch.setattr("flows.stages.formats.rules", lambda: {**rules_module.rules(), "formats": formats})
    (doc,) = read_file("f.jsonl", jsonl({"text": "Words.", "meta": {"url": "https://e.org/n"}})).documents
    assert doc.meta.url == "https://e.org/n"


def test_bad_jsonl_lines_are_rejects_naming_the_line_and_the_rest_loads():
    data = jsonl(
        {"text": "Good one."},
        [1, 2],
        b"{not json",
        b"",
        {"title": "no text"},
        {"text": 42},
        {"text": "   "},
        b'{"text": "caf\xe9"}',
        {"html": (PAGE % LONG.encode()).decode()},
        {"text": "Good two."},
    )
    report = read_file("feed.jsonl", data)
    assert [(d.raw_record, d.text) for d in report.documents] == [(1, "Good one."), (9, LONG), (10, "Good two.")]
    assert messages(report) == [
        ("bad_record", 2, "feed.jsonl line 2: is a JSON array, not an object"),
        ("bad_record", 3, "feed.jsonl line 3: is not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        ("bad_record", 5, "feed.jsonl line 5: has no text: none of the fields text, content, body, maintext, html, "
                          "raw_html, raw_content (rules.toml [formats.jsonl])"),
        ("bad_record", 6, "feed.jsonl line 6: field 'text' is a JSON number, not a string"),
        ("empty", 7, "feed.jsonl line 7: field 'text' holds only whitespace"),
        ("bad_record", 8, "feed.jsonl line 8: is not UTF-8 (invalid continuation byte at byte 14 of the line)"),
    ]
    assert report.skipped == {"blank line": 1}


def test_a_truncated_jsonl_gz_keeps_the_lines_before_the_cut():
    lines = [{"text": f"Post number {n} has a few words of its own."} for n in range(200)]
    report = read_file("feed.jsonl.gz", gzip.compress(jsonl(*lines))[:-200])
    kept = [d.raw_record for d in report.documents]
    assert kept == list(range(1, len(kept) + 1)) and 100 < len(kept) < 200
    kinds = [(k, r) for k, r, _ in messages(report)]
    assert kinds[-1] == ("bad_gzip", None) and "the rest of the file is lost" in messages(report)[-1][2]
    assert all(k == "bad_record" and r == len(kept) + 1 for k, r in kinds[:-1])  # the cut line, if any


# --- WARC ------------------------------------------------------------------------------------


def test_the_sample_warc_is_what_its_generator_writes():
    assert SAMPLE_WARC.read_bytes() == warc_bytes()


def test_warc_html_responses_become_documents_and_the_rest_is_counted():
    report = read_file("crawl/crawl-2026-03.warc.gz", SAMPLE_WARC.read_bytes())
    assert report.rejects == []
    essay, river = report.documents
    assert (essay.raw_record, essay.encoding, essay.format) == (3, "cp1252", "warc")
    assert essay.meta == PageMeta(title="Keepers of the light", author="Tomás Ferreira", published="2025-11-20",
                                  url="https://example.net/essays/lighthouse", site_name="The Lighthouse Review",
                                  fetched="2026-03-05T10:00:01")
    assert "The café at its foot still serves the keepers’ old recipe" in essay.text
    assert (river.raw_record, river.text, river.meta.fetched) == (5, RIVER_TEXT, "2026-03-05T10:00:02")
    assert report.skipped == {"request record": 2, "response HTTP 301": 1, "response image/png": 1, "warcinfo record": 1}


def small_warc(*bodies: bytes) -> bytes:
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=False)
    for number, body in enumerate(bodies, start=1):
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        record = writer.create_warc_record(f"https://e.org/{number}", "response", payload=io.BytesIO(body),
                                           http_headers=http, warc_headers_dict={"WARC-Date": "2024-01-01T00:00:00Z"})
        writer.write_record(record)
    return out.getvalue()


THREE = [PAGE % f"Page {n}. {LONG}".encode() for n in (1, 2, 3)]


def _change_length(data: bytes, which: int, delta: int) -> bytes:
    """The WARC with record `which` (1-based) declaring `delta` more bytes than it holds."""
    lengths = list(re.finditer(rb"\r\nContent-Length: (\d+)\r\n\r\nHTTP", data))
    match = lengths[which - 1]
    return data[: match.start(1)] + str(int(match[1]) + delta).encode() + data[match.end(1):]


def test_a_warc_record_with_a_short_length_is_a_reject_and_the_others_load():
    report = read_file("c.warc", _change_length(small_warc(*THREE), 2, -30))
    assert [d.raw_record for d in report.documents] == [1, 3]
    assert messages(report) == [("bad_record", 2, "c.warc record 2: its Content-Length does not match its content: "
                                                  "the record is cut short or runs into the next one")]


def test_a_warc_record_with_a_long_length_ends_the_file_and_what_came_before_loads():
    report = read_file("c.warc", _change_length(small_warc(*THREE), 2, +40))
    assert [d.raw_record for d in report.documents] == [1]
    kinds = [(k, r) for k, r, _ in messages(report)]
    assert kinds[0] == ("bad_record", 2)
    assert kinds[-1] == ("bad_record", 3) and "the records after it are not read" in messages(report)[-1][2]


def test_a_truncated_warc_gz_keeps_its_complete_records():
    data = gzip.compress(small_warc(*THREE))
    report = read_file("c.warc.gz", data[: len(data) * 2 // 3])
    assert [d.raw_record for d in report.documents] == [1]
    assert ("bad_gzip", None) in [(k, r) for k, r, _ in messages(report)]


def test_a_warc_record_whose_digest_does_not_match_is_a_reject():
    data = small_warc(*THREE).replace(b"Page 2.", b"Page X.")
    report = read_file("c.warc", data)
    assert [d.raw_record for d in report.documents] == [1, 3]
    assert messages(report) == [("bad_record", 2, "c.warc record 2: its content does not match its WARC digest (damaged)")]


def test_a_file_that_is_not_a_warc_is_a_reject():
    report = read_file("c.warc", b"hello, I am not an archive\n")
    assert report.documents == []
    assert messages(report) == [("bad_record", None, "c.warc: is not a WARC archive (it does not begin with 'WARC/')")]
