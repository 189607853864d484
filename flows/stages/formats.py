"""Formats: one raw file's bytes -> the documents it holds.

Takes a file's path relative to raw/ (its name decides the format) and its bytes; gives a
`FileReport`: the `Extracted` documents (text to clean, encoding, format, line or record
number, and what the format says: URL, title, author, dates, site name), rejects naming the
file and the line or record, and counts of records that are not documents (WARC requests,
images...). Never raises for bad input.

Text files hold one document. HTML pages go through trafilatura (main text, reader comments
kept apart, metadata from the markup). JSON Lines hold one document per line, WARC archives
one per HTML response. Gzip is read transparently, up to a bound (rules.toml [formats]).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import zlib
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import PurePosixPath

import trafilatura
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from flows.stages.clean import split_lines
from flows.stages.decode import decode, overlong_line
from flows.stages.records import Extracted, PageMeta, Reject
from flows.stages.rules import rules

_SUFFIX_FORMATS = {".html": "html", ".htm": "html", ".xhtml": "html",
                   ".jsonl": "jsonl", ".ndjson": "jsonl", ".warc": "warc"}
GZIP_MAGIC = b"\x1f\x8b"

# trafilatura and htmldate log every page they find no text in; the reject says it once.
for _name in ("trafilatura", "htmldate", "courlan"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


def format_of(raw_path: str) -> str:
    """text | html | jsonl | warc, from the file name (a final .gz does not count)."""
    name = PurePosixPath(raw_path.lower())
    if name.suffix == ".gz":
        name = name.with_suffix("")
    return _SUFFIX_FORMATS.get(name.suffix, "text")


def gunzip(data: bytes, limit: int) -> tuple[bytes, tuple[str, str] | None]:
    """Every gzip member of `data` decompressed, at most `limit` bytes: (bytes, None), or
    (what decompressed before the problem, (reject kind, why))."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=31)
        pending = rest
        try:
            while pending and not inflater.eof:
                out += inflater.decompress(pending, limit + 1 - len(out))
                if len(out) > limit:
                    return bytes(out[:limit]), ("too_large", f"decompresses to more than {limit} bytes "
                                                             "(rules.toml [formats] max_decompressed_bytes)")
                pending = inflater.unconsumed_tail
        except zlib.error as exc:
            return bytes(out), ("bad_gzip", f"is not valid gzip data after {len(out)} decompressed bytes ({exc})")
        if not inflater.eof:
            return bytes(out), ("bad_gzip", f"gzip data is cut off after {len(out)} decompressed bytes")
        rest = inflater.unused_data
        if not rest.strip(b"\0"):  # some writers pad the last member with NULs
            break
    return bytes(out), None


def _where(raw_path: str, fmt: str, record: int | None) -> str:
    """The file, and the line (JSON Lines) or record (WARC), as messages name them."""
    return raw_path if record is None else f"{raw_path} {'line' if fmt == 'jsonl' else 'record'} {record}"


def located_reject(raw_path: str, fmt: str, kind: str, why: str, record: int | None = None) -> Reject:
    return Reject(raw_path, kind, f"{_where(raw_path, fmt, record)}: {why}", raw_record=record)


class FileReport:
    """How one raw file was read: its documents, its rejects, and the records skipped as not
    documents, counted by kind."""

    def __init__(self, raw_path: str, fmt: str):
        self.raw_path, self.format = raw_path, fmt
        self.documents: list[Extracted] = []
        self.rejects: list[Reject] = []
        self.skipped: Counter[str] = Counter()

    def reject(self, kind: str, why: str, record: int | None = None) -> None:
        self.rejects.append(located_reject(self.raw_path, self.format, kind, why, record))

    def add(self, result: Extracted | Reject) -> None:
        (self.documents if isinstance(result, Extracted) else self.rejects).append(result)


def read_file(raw_path: str, data: bytes) -> FileReport:
    """A raw file's bytes -> its documents, rejects and skipped records."""
    report = FileReport(raw_path, format_of(raw_path))
    damage = None
    if data.startswith(GZIP_MAGIC):
        data, damage = gunzip(data, rules()["formats"]["max_decompressed_bytes"])
    if damage and report.format in ("text", "html"):  # one document: damaged means unreadable
        report.reject(*damage)
        return report
    if report.format == "jsonl":
        _read_jsonl(data, report)
    elif report.format == "warc":
        _read_warc(data, report)
    else:
        reader = _read_html if report.format == "html" else _read_text
        report.add(reader(data, raw_path))
    if damage:  # what came before the damage was read; say what was lost after it
        report.reject(damage[0], damage[1] + "; the rest of the file is lost")
    return report


def _read_text(data: bytes, raw_path: str) -> Extracted | Reject:
    decoded = decode(data, raw_path)
    return decoded if isinstance(decoded, Reject) else Extracted(decoded[0], decoded[1], "text")


# --- HTML ------------------------------------------------------------------------------------


def html_markup(data: bytes, where: str, content_type: str | None = None) -> tuple[str, str] | Reject:
    """An HTML page's bytes -> (markup, encoding). A byte-order mark decides; then bytes that
    are valid UTF-8 with non-ASCII characters are UTF-8 (pages declaring Latin-1 while serving
    UTF-8 are common; legacy text is valid UTF-8 by accident almost never); then the HTTP
    Content-Type, then the page's own <meta> declaration; else detection as for text."""
    declared = None
    has_bom = read_bom(data)[0] is not None
    if not has_bom and not data.isascii():
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    if not has_bom:
        declared = http_content_type_encoding(content_type) or html_body_declared_encoding(data)
        if declared and declared.startswith(("utf-16", "utf-32")):
            declared = "utf-8"  # a page cannot declare a wide encoding it is read in (WHATWG)
    if declared:
        try:
            return data.decode(declared), declared
        except (UnicodeDecodeError, LookupError):
            pass  # the declaration is wrong: detect, rather than store wrong letters
    return decode(data, where, check_lines=False)


def _iso_date(value: object) -> str | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        return None


def _iso_datetime(value: object) -> str | None:
    """An ISO date-time (or date) in UTC without zone, seconds precision; None if not ISO."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def extract_html(markup: str, encoding: str, fmt: str, raw_path: str, record: int | None = None,
                 meta: PageMeta = PageMeta()) -> Extracted | Reject:
    """Main text, comments and metadata of a page with trafilatura. `meta` (what the container
    says: a WARC's URL and date, a JSON line's fields) wins over what the page says."""
    spec = rules()["formats"]
    try:
        page = trafilatura.bare_extraction(
            markup, url=meta.url, include_comments=True, include_tables=True, with_metadata=True,
            deduplicate=False,
            date_extraction_params={"original_date": True, "max_date": spec["html_max_date"],
                                    "extensive_search": spec["html_extensive_date_search"]},
        )
    except Exception as exc:  # lxml and the fallback extractors fail in many ways on broken markup
        return located_reject(raw_path, fmt, "no_text", "trafilatura failed on this page "
                              f"({type(exc).__name__}: {str(exc)[:200]})", record)
    main = (page.text or "").strip("\n") if page else ""
    comments = (page.comments or "").strip("\n") if page else ""
    if not (main.strip() or comments.strip()):
        return located_reject(raw_path, fmt, "no_text", "trafilatura found no main text "
                              "(no <body>, or only navigation and boilerplate)", record)
    text, comments_from = main, None
    if comments.strip():
        text = f"{main}\n{comments}" if main else comments
        comments_from = len(split_lines(main)) + 1 if main else 1
    if too_long := overlong_line(text):
        return located_reject(raw_path, fmt, "line_too_long", too_long, record)
    found = PageMeta(
        title=meta.title or page.title or None,
        author=meta.author or page.author or None,
        published=meta.published or _iso_date(page.date),
        url=meta.url or page.url or None,
        site_name=meta.site_name or page.sitename or None,
        fetched=meta.fetched,
    )
    return Extracted(text, encoding, fmt, record, found, comments_from)


def _read_html(data: bytes, raw_path: str) -> Extracted | Reject:
    decoded = html_markup(data, raw_path)
    if isinstance(decoded, Reject):
        return decoded
    return extract_html(decoded[0], decoded[1], "html", raw_path)


# --- JSON Lines ------------------------------------------------------------------------------


def _field(obj: dict, names: list[str]) -> tuple[str, object] | None:
    """(name, value) of the first of `names` present in obj with a value ("a.b": nested)."""
    for name in names:
        value: object = obj
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value not in (None, "", []):
            return name, value
    return None


def _meta_text(obj: dict, names: list[str]) -> str | None:
    found = _field(obj, names)
    if found is None:
        return None
    value = found[1]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = ", ".join(v.strip() for v in value if v.strip())
    return value.strip() or None if isinstance(value, str) else None


def _json_type(value: object) -> str:
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return kinds.get(type(value), "null")


def _read_jsonl(data: bytes, report: FileReport) -> None:
    spec = rules()["formats"]["jsonl"]
    lines = data.split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()  # the newline ending the last line
    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if not line.strip():
            report.skipped["blank line"] += 1
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            report.reject("bad_record", f"is not UTF-8 ({exc.reason} at byte {exc.start + 1} of the line)", number)
            continue
        except json.JSONDecodeError as exc:
            report.reject("bad_record", f"is not valid JSON ({exc.msg} at column {exc.colno})", number)
            continue
        if not isinstance(obj, dict):
            report.reject("bad_record", f"is a JSON {_json_type(obj)}, not an object", number)
            continue
        meta = PageMeta(
            title=_meta_text(obj, spec["title"]), author=_meta_text(obj, spec["author"]),
            published=_iso_date(_meta_text(obj, spec["published"])), url=_meta_text(obj, spec["url"]),
            site_name=_meta_text(obj, spec["site_name"]), fetched=_iso_datetime(_meta_text(obj, spec["fetched"])),
        )
        text, html = _field(obj, spec["text"]), _field(obj, spec["html"])
        if text is None and html is not None and isinstance(html[1], str):
            report.add(extract_html(html[1], "utf-8", "jsonl", report.raw_path, number, meta))
        elif text is None:
            report.reject("bad_record", f"has no text: none of the fields {', '.join(spec['text'] + spec['html'])} "
                                        "(rules.toml [formats.jsonl])", number)
        elif not isinstance(text[1], str):
            report.reject("bad_record", f"field {text[0]!r} is a JSON {_json_type(text[1])}, not a string", number)
        elif not text[1].strip():
            report.reject("empty", f"field {text[0]!r} holds only whitespace", number)
        elif too_long := overlong_line(text[1]):
            report.reject("line_too_long", too_long, number)
        else:
            report.add(Extracted(text[1], "utf-8", "jsonl", number, meta))


# --- WARC ------------------------------------------------------------------------------------


def _read_warc(data: bytes, report: FileReport) -> None:
    """HTML responses become documents (URL = WARC-Target-URI, fetched = WARC-Date); other
    records are counted as skipped. A record whose length is wrong is a reject; a record that
    cannot be parsed ends the file (a reject says so), what came before it is kept."""
    if not data.startswith(b"WARC/"):  # warcio would read other text as an old ARC file
        report.reject("bad_record", "is not a WARC archive (it does not begin with 'WARC/')")
        return
    iterator = ArchiveIterator(io.BytesIO(data), check_digests=True)
    number, errors_seen = 0, 0
    # warcio reports a wrong Content-Length only on stderr, when it reaches the next record:
    # its error count tells which record was bad.
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            for record in iterator:
                errors_seen = _blame_length(iterator, errors_seen, report, number)
                number += 1
                _warc_record(record, number, report)
            _blame_length(iterator, errors_seen, report, number)
        except Exception as exc:  # warcio raises many kinds of error on malformed input
            _blame_length(iterator, errors_seen, report, number)
            why = str(exc).strip()[:200] if isinstance(exc, ArchiveLoadFailed) else f"{type(exc).__name__}: {exc}"[:200]
            report.reject("bad_record", f"cannot be parsed ({why}); the records after it are not read", number + 1)


def _blame_length(iterator: ArchiveIterator, errors_seen: int, report: FileReport, number: int) -> int:
    if iterator.err_count > errors_seen and number:  # this reason replaces any other for the record
        report.documents = [d for d in report.documents if d.raw_record != number]
        report.rejects = [r for r in report.rejects if r.raw_record != number]
        report.reject("bad_record", "its Content-Length does not match its content: the record is cut "
                                    "short or runs into the next one", number)
    return iterator.err_count


def _warc_record(record, number: int, report: FileReport) -> None:
    spec = rules()["formats"]
    if record.rec_type != "response":
        report.skipped[f"{record.rec_type} record"] += 1
        return
    http = record.http_headers
    content_type = (http.get_header("Content-Type") or "") if http else ""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in spec["warc_html_types"]:
        report.skipped[f"response {media_type or 'without a type'}"] += 1
        return
    status = http.get_statuscode() or ""
    if not status.startswith("2"):
        report.skipped[f"response HTTP {status}"] += 1
        return
    limit = spec["max_decompressed_bytes"]
    try:
        body = record.content_stream().read(limit + 1)  # undoes chunked and gzip transfer codings
    except Exception as exc:  # a broken chunked or compressed body
        report.reject("bad_record", f"its HTTP body cannot be decoded ({type(exc).__name__}: {str(exc)[:200]})", number)
        return
    if len(body) > limit:
        report.reject("too_large", f"its body is over {limit} bytes (rules.toml [formats] "
                                   "max_decompressed_bytes)", number)
        return
    if record.digest_checker.passed is False:
        report.reject("bad_record", "its content does not match its WARC digest (damaged)", number)
        return
    decoded = html_markup(body, _where(report.raw_path, report.format, number), content_type)
    if isinstance(decoded, Reject):
        report.rejects.append(Reject(report.raw_path, decoded.error_kind, decoded.message, raw_record=number))
        return
    headers = record.rec_headers
    meta = PageMeta(url=headers.get_header("WARC-Target-URI"), fetched=_iso_datetime(headers.get_header("WARC-Date")))
    report.add(extract_html(decoded[0], decoded[1], "warc", report.raw_path, number, meta))
