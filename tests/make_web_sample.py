"""Write raw/sample/crawl/crawl-2026-03.warc.gz, the sample's WARC archive (byte-identical on
every run: fixed record ids and dates; gzip members carry no time stamp).

    python tests/make_web_sample.py [OUT]

What it holds, in order: a warcinfo record; a request and an HTML response for an essay on
example.net, in windows-1252 as its HTTP header declares; a request and a response for the
sample's river-notes page (the bytes of raw/sample/field_notes/river-notes.html: the same page
scraped twice, and an exact duplicate across sources); a PNG image response and a 301
redirect (both skipped: not HTML, not a 2xx answer). All the text is written for this project.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

SAMPLE = Path(__file__).resolve().parent.parent / "raw" / "sample"
OUT = SAMPLE / "crawl" / "crawl-2026-03.warc.gz"

LIGHTHOUSE = """<!DOCTYPE html>
<html><head><title>Keepers of the light</title>
<meta property="og:site_name" content="The Lighthouse Review">
<meta name="author" content="Tomás Ferreira">
<meta property="article:published_time" content="2025-11-20">
</head><body>
<div class="menu"><a href="/">The Lighthouse Review</a> | <a href="/essays">Essays</a> | <a href="/shop">Shop</a></div>
<article><h1>Keepers of the light</h1>
<p>For a hundred and forty years the lighthouse at Cabo de São Vicente was kept by families who lived beside it. The café at its foot still serves the keepers’ old recipe for fish soup.</p>
<p>Automation came in 1982. The lamp no longer needs anyone to trim a wick or wind the clockwork, but a technician visits every month and, on stormy nights, stays.</p>
<p>What the keepers left behind is mostly paper: logbooks listing ships, weather and the occasional visitor, written in a careful hand that did not change for decades.</p>
</article>
<div class="footer">Essays and photographs © The Lighthouse Review</div>
</body></html>
"""

# A 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


def _record(writer: WARCWriter, number: int, rec_type: str, uri: str | None, date: str,
            payload: bytes, http: StatusAndHeaders | None = None, content_type: str | None = None):
    headers = {"WARC-Record-ID": f"<urn:uuid:00000000-0000-4000-8000-{number:012d}>", "WARC-Date": date}
    record = writer.create_warc_record(uri, rec_type, payload=io.BytesIO(payload), http_headers=http,
                                       warc_headers_dict=headers, warc_content_type=content_type)
    writer.write_record(record)


def _response(status: str, headers: list[tuple[str, str]]) -> StatusAndHeaders:
    return StatusAndHeaders(status, headers, protocol="HTTP/1.1")


def warc_bytes() -> bytes:
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    river = (SAMPLE / "field_notes" / "river-notes.html").read_bytes()
    essay, river_url = "https://example.net/essays/lighthouse", "https://example.org/blog/river-notes"
    _record(writer, 1, "warcinfo", None, "2026-03-05T10:00:00Z",
            b"software: tests/make_web_sample.py\r\nformat: WARC File Format 1.1\r\n",
            content_type="application/warc-fields")
    _record(writer, 2, "request", essay, "2026-03-05T10:00:01Z", b"",
            StatusAndHeaders("GET /essays/lighthouse HTTP/1.1", [("Host", "example.net")], is_http_request=True))
    _record(writer, 3, "response", essay, "2026-03-05T10:00:01Z", LIGHTHOUSE.encode("cp1252"),
            _response("200 OK", [("Content-Type", "text/html; charset=windows-1252")]))
    _record(writer, 4, "request", river_url, "2026-03-05T10:00:02Z", b"",
            StatusAndHeaders("GET /blog/river-notes HTTP/1.1", [("Host", "example.org")], is_http_request=True))
    _record(writer, 5, "response", river_url, "2026-03-05T10:00:02Z", river,
            _response("200 OK", [("Content-Type", "text/html")]))
    _record(writer, 6, "response", "https://example.org/images/pixel.png", "2026-03-05T10:00:03Z", PNG,
            _response("200 OK", [("Content-Type", "image/png")]))
    _record(writer, 7, "response", "https://example.org/old-river", "2026-03-05T10:00:04Z", b"",
            _response("301 Moved Permanently", [("Location", river_url), ("Content-Type", "text/html")]))
    return out.getvalue()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(warc_bytes())
    print(f"wrote {target}")
