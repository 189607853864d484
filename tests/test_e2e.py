"""End to end: the real Prefect flow (temporary server), the real DuckLake warehouse, the CLI."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest

from flows.interface import confine
from tests.conftest import SAMPLE, corpus, fingerprint, postgres_database

OFFSET_MISMATCHES = (
    "SELECT count(*) AS bad FROM sentences s JOIN documents d USING (doc_id) "
    "WHERE substr(d.clean_text, s.char_start + 1, s.char_end - s.char_start) <> s.text"
)


def sql_json(wh: Path, query: str) -> list[dict]:
    return json.loads(corpus("sql", "--warehouse", str(wh), "--format", "json", query))


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def built(request, tmp_path_factory):
    """The sample plus three bad files, run twice into one warehouse, whose catalog is the
    embedded SQLite file or a PostgreSQL database. Only the first run names the catalog: every
    later command finds it through the warehouse folder."""
    tmp = tmp_path_factory.mktemp("e2e")
    raw = tmp / "raw"
    shutil.copytree(SAMPLE, raw)
    (raw / "empty.txt").write_bytes(b"")
    (raw / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (raw / "invalid-utf8.txt").write_bytes(bytes(range(0x80, 0x100)) * 8)
    wh = tmp / "wh"
    with ExitStack() as stack:
        catalog = [] if request.param == "embedded" else ["--catalog", stack.enter_context(postgres_database())]
        first = corpus("run", str(raw), "--warehouse", str(wh), *catalog, expect=3)  # completed with rejects
        sentences_after_first = sql_json(wh, "SELECT * FROM sentences ORDER BY sentence_id")
        second = corpus("run", str(raw), "--warehouse", str(wh))
        yield wh, first, second, sentences_after_first


def test_the_catalog_is_where_the_first_run_put_it(built, request):
    wh, *_ = built
    if request.node.callspec.params["built"] == "embedded":
        assert (wh / "catalog.sqlite").exists() and not (wh / "catalog.url").exists()
    else:
        assert not (wh / "catalog.sqlite").exists()
        assert (wh / "catalog.url").read_text().startswith("postgresql://")


def test_first_run_prints_summary_and_example_query(built):
    _, first, _, _ = built
    assert "committed snapshot 1" in first
    assert "files      11 (11 new, 0 changed, 0 reprocessed for repeats, 0 unchanged, 0 deleted)" in first
    assert "documents  11" in first
    assert "rejects    3" in first
    assert "Example: corpus sql" in first and "body" in first


def test_rejects_are_recorded_with_reasons(built):
    wh, *_ = built
    assert sql_json(wh, "SELECT raw_path, error_kind, message FROM rejects ORDER BY raw_path") == [
        {"raw_path": "empty.txt", "error_kind": "empty", "message": "empty.txt: file is empty (0 bytes)"},
        {"raw_path": "image.txt", "error_kind": "binary", "message": "image.txt: is a PNG image, not text"},
        {"raw_path": "invalid-utf8.txt", "error_kind": "undecodable",
         "message": "invalid-utf8.txt: is not UTF-8 and no character set fits (charset detection found no candidate)"},
    ]


def test_offsets_hold_in_duckdb_for_every_sentence(built):
    wh, *_ = built
    assert sql_json(wh, OFFSET_MISMATCHES) == [{"bad": 0}]
    assert sql_json(wh, "SELECT count(*) AS n FROM sentences WHERE trim(text) = ''") == [{"n": 0}]


def test_sources_come_from_the_sidecar(built):
    wh, *_ = built
    rows = sql_json(wh, "SELECT source_id, count(*) AS docs FROM documents GROUP BY 1 ORDER BY 1")
    assert [r["source_id"] for r in rows] == [
        "article_001", "book_chapter_003", "communist_revolution", "crawl", "field_notes",
        "lair_of_a_squirrel_red", "socialist_worker",
    ]
    blog = sql_json(wh, "SELECT title, author, published FROM documents WHERE source_id = 'lair_of_a_squirrel_red'")
    assert blog == [{"title": "Making sense of Stalinism.", "author": "korakious", "published": "2008-01-27"}]


def test_second_run_changes_no_data_and_keeps_identical_sentences(built):
    wh, _, second, sentences_after_first = built
    assert "files      11 (0 new, 0 changed, 0 reprocessed for repeats, 11 unchanged, 0 deleted)" in second
    assert "sentences  0 added, 0 deleted" in second
    assert sql_json(wh, "SELECT * FROM sentences ORDER BY sentence_id") == sentences_after_first
    runs = json.loads(corpus("versions", "--warehouse", str(wh), "--format", "json"))
    assert [(v["snapshot_id"], v["n_new"], v["n_sentences"]) for v in runs[1:]] == [
        (1, 11, len(sentences_after_first)), (2, 0, 0),
    ]


def test_every_format_gives_documents_with_their_metadata(built):
    wh, *_ = built
    rows = sql_json(wh, "SELECT raw_path, raw_record, format, encoding, url, title, author, "
                        "CAST(published AS VARCHAR) AS published, CAST(fetched AS VARCHAR) AS fetched, site_name "
                        "FROM documents WHERE format <> 'text' ORDER BY raw_path, raw_record")
    river = {"url": "https://example.org/blog/river-notes", "title": "Notes from the river",
             "author": "Ana Ribeiro", "published": "2026-03-01"}
    assert rows == [
        {"raw_path": "crawl/crawl-2026-03.warc.gz", "raw_record": 3, "format": "warc", "encoding": "cp1252",
         "url": "https://example.net/essays/lighthouse", "title": "Keepers of the light", "author": "Tomás Ferreira",
         "published": "2025-11-20", "fetched": "2026-03-05 10:00:01", "site_name": "The Lighthouse Review"},
        {"raw_path": "crawl/crawl-2026-03.warc.gz", "raw_record": 5, "format": "warc", "encoding": "utf-8",
         **river, "fetched": "2026-03-05 10:00:02", "site_name": "Field Notes"},
        {"raw_path": "field_notes/posts.jsonl", "raw_record": 1, "format": "jsonl", "encoding": "utf-8",
         **river, "url": "https://example.org/blog/river-notes?utm_source=feed", "fetched": "2026-03-10 08:00:00",
         "site_name": None},
        {"raw_path": "field_notes/posts.jsonl", "raw_record": 2, "format": "jsonl", "encoding": "utf-8",
         "url": "https://example.org/blog/salt-pans", "title": "The salt pans in winter",
         "author": "Ana Ribeiro, Rui Costa", "published": "2026-02-14", "fetched": "2026-03-10 08:00:05", "site_name": None},
        {"raw_path": "field_notes/posts.jsonl", "raw_record": 3, "format": "jsonl", "encoding": "utf-8",
         "url": "https://example.org/blog/mercado", "title": "O mercado de sábado", "author": "Rui Costa",
         "published": "2026-01-31", "fetched": "2026-03-10 08:00:09", "site_name": None},
        {"raw_path": "field_notes/river-notes.html", "raw_record": None, "format": "html", "encoding": "utf-8",
         **river, "fetched": None, "site_name": "Field Notes"},
    ]


def test_one_page_read_three_times_is_three_documents_with_one_page_id(built):
    wh, *_ = built
    rows = sql_json(wh, "SELECT raw_path, raw_record, is_latest, duplicate_of IS NOT NULL AS duplicate, "
                        "count(*) OVER (PARTITION BY page_id) AS versions FROM documents "
                        "WHERE title = 'Notes from the river' ORDER BY raw_path")
    assert rows == [
        {"raw_path": "crawl/crawl-2026-03.warc.gz", "raw_record": 5, "is_latest": False, "duplicate": False, "versions": 3},
        {"raw_path": "field_notes/posts.jsonl", "raw_record": 1, "is_latest": True, "duplicate": False, "versions": 3},
        {"raw_path": "field_notes/river-notes.html", "raw_record": None, "is_latest": False, "duplicate": True, "versions": 3},
    ]
    (html,) = sql_json(wh, "SELECT d.duplicate_of = w.doc_id AS same FROM documents d, documents w "
                           "WHERE d.format = 'html' AND w.format = 'warc' AND w.raw_record = 5")
    assert html == {"same": True}
    assert sql_json(wh, "SELECT count(DISTINCT page_id) AS pages, count(*) AS documents, count(*) FILTER (WHERE is_latest) "
                        "AS latest FROM documents") == [{"pages": 9, "documents": 11, "latest": 9}]


@pytest.mark.parametrize("table", ["sentences", "removed", "edits"])
def test_the_obvious_join_to_documents_never_multiplies_rows(built, table):
    """The sample reads one page three times: joining on the column both tables share by name
    gives each row exactly one document."""
    wh, *_ = built
    (row,) = sql_json(wh, f"SELECT (SELECT count(*) FROM {table}) AS alone, "
                          f"(SELECT count(*) FROM {table} JOIN documents USING (doc_id)) AS joined, "
                          "(SELECT count(*) - count(DISTINCT doc_id) FROM documents) AS repeated_keys")
    assert row["alone"] > 0
    assert row == {"alone": row["alone"], "joined": row["alone"], "repeated_keys": 0}


def test_html_comments_are_comment_sentences_and_spam_is_removed(built):
    wh, *_ = built
    comments = sql_json(wh, "SELECT s.text FROM sentences s JOIN documents d USING (doc_id) "
                            "WHERE d.format = 'html' AND s.section = 'comment' ORDER BY s.char_start")
    assert [c["text"] for c in comments] == [
        "We saw the same thing upstream last spring.", "The council promised new embankments and then forgot about them.",
        "Thank you for writing this down.", "It helps to have a record of what happened, street by street.",
    ]
    assert sql_json(wh, "SELECT r.rule, r.text FROM removed r JOIN documents d USING (doc_id) WHERE d.format = 'html'") == [
        {"rule": "comment.spam", "text": "Buy cheap watches online, click here!"}]


def test_files_account_for_every_record(built):
    wh, *_ = built
    assert sql_json(wh, "SELECT raw_path, format, n_documents, n_rejects, n_skipped, skipped FROM files "
                        "WHERE format <> 'text' ORDER BY raw_path") == [
        {"raw_path": "crawl/crawl-2026-03.warc.gz", "format": "warc", "n_documents": 2, "n_rejects": 0, "n_skipped": 5,
         "skipped": "request record: 2; response HTTP 301: 1; response image/png: 1; warcinfo record: 1"},
        {"raw_path": "field_notes/posts.jsonl", "format": "jsonl", "n_documents": 3, "n_rejects": 0, "n_skipped": 0, "skipped": None},
        {"raw_path": "field_notes/river-notes.html", "format": "html", "n_documents": 1, "n_rejects": 0, "n_skipped": 0, "skipped": None},
    ]
    assert sql_json(wh, "SELECT count(*) AS n FROM files") == [{"n": 11}]


def test_sql_count_answers_from_the_warehouse(built):
    wh, *_ = built
    output = corpus("sql", "--warehouse", str(wh), "select count(*) from sentences")
    count = sql_json(wh, "select count(*) AS n from sentences")[0]["n"]
    assert output.splitlines()[2].strip() == str(count)
    csv_output = corpus("sql", "--warehouse", str(wh), "--format", "csv", "select 1 AS a, 'x' AS b")
    assert csv_output == "a,b\n1,x\n"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "flows", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "does-not-exist"], "corpus: error: raw folder does-not-exist does not exist"),
        (["run", "empty-dir"], "corpus: error: raw folder empty-dir contains no files"),
        (["sql", "select 1", "--warehouse", "nowhere"], "corpus: error: no warehouse at nowhere"),
        (["run", "raw", "--warehouse", "/sys/corpus-warehouse"],  # /sys: not writable, even by root
         "corpus: error: cannot write to warehouse /sys/corpus-warehouse: "),
    ],
)
def test_user_errors_are_one_line_without_traceback(tmp_path, args, message):
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.txt").write_text("Some text here.")
    result = _cli(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr


def test_bad_sql_is_a_clear_error(built, tmp_path):
    wh, *_ = built
    result = _cli("sql", "--warehouse", str(wh), "SELECT * FROM no_such_table", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("corpus: error: SQL failed: Catalog Error")
    assert "Traceback" not in result.stderr


def test_diff_and_release_read_the_same_catalog(built):
    wh, *_ = built
    assert json.loads(corpus("diff", "1", "2", "--warehouse", str(wh), "--format", "json")) == [
        {"change": kind, "count": 0} for kind in (
            "documents added", "documents removed", "documents changed", "sentences added", "sentences removed")
    ]
    added = json.loads(corpus("diff", "0", "1", "--warehouse", str(wh), "--format", "json"))
    assert added[0] == {"change": "documents added", "count": 11}
    assert "released 1.0.0" in corpus("release", "1.0.0", "--warehouse", str(wh))
    assert "all files match" in corpus("verify", str(wh / "releases" / "1.0.0"))
    manifest = json.loads((wh / "releases" / "1.0.0" / "manifest.json").read_text())
    assert manifest["snapshot_id"] == 2 and manifest["row_counts"]["sentences"] == 1358


@pytest.mark.skipif(not confine.abi_version(), reason="this kernel has no Landlock")
def test_a_run_on_a_warehouse_it_cannot_write_is_one_line(tmp_path):
    """The warehouse's file system read-only for the run (a Landlock ruleset on its process):
    one line, no traceback, the warehouse untouched."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("Some text here.")
    wh = tmp_path / "wh"
    corpus("run", str(raw), "--warehouse", str(wh))
    before = fingerprint(wh)
    (raw / "b.txt").write_text("More text here.")
    writable = confine.writable_roots(wh, [Path(tempfile.gettempdir()), tmp_path / "home", Path("/dev")])
    result = subprocess.run([sys.executable, "-m", "flows", "run", str(raw), "--warehouse", str(wh)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            preexec_fn=confine.deny_writes_except(writable))
    assert result.returncode == 1
    assert result.stderr.startswith(f"corpus: error: cannot write to warehouse {wh}: Permission denied"), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert fingerprint(wh) == before
