"""Hostile inputs: every bad file gets a clear reason, nothing else is lost, nothing escapes raw/.

CATALOGUE lists each input with its expected outcome (a document with the right text, or a
reject of a specific kind). The unit tests check each entry through `process_file` or
`inventory`; `test_a_run_over_all_of_them_plus_the_sample` puts them all in one raw folder
with the sample and runs the real CLI.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from flows.stages.ingest import inventory
from flows.stages.document import process_file
from flows.run.shards import read_raw
from flows.stages.records import DocMeta, RawFile, sha256_hex
from tests.conftest import SAMPLE, corpus
from tests.invariants import assert_sentences_cover

LTR = "First paragraph here. It has two sentences.\n\nSecond paragraph, one sentence.\n"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("article.txt", "Hello there. " * 20)
    return buffer.getvalue()


@dataclass(frozen=True)
class Hostile:
    name: str          # file name in raw/
    data: bytes
    reject: str | None = None      # expected reject kind, or None for a document
    text: str | None = None        # expected clean text of the document, when stated exactly


CATALOGUE = [
    Hostile("empty.txt", b"", reject="empty"),
    Hostile("whitespace-only.txt", b" \n\t\r\n   \n", reject="empty"),
    Hostile("nul-bytes.txt", b"text\x00with\x00NULs " * 50, reject="binary"),
    Hostile("a-pdf.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", reject="binary"),
    Hostile("a-jpeg.txt", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)), reject="binary"),
    Hostile("a-gzip.txt", gzip.compress(b"Hello there. " * 50, mtime=0), text=("Hello there. " * 50).strip()),
    Hostile("cut.txt.gz", gzip.compress(b"Hello there. " * 50, mtime=0)[:-12], reject="bad_gzip"),
    Hostile("double.txt.gz", gzip.compress(gzip.compress(b"Hello there.", mtime=0), mtime=0), reject="binary"),
    Hostile("no-body.html", b"<html><head><title>Only a head</title></head></html>", reject="no_text"),
    Hostile("not-an-archive.warc", b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n", reject="bad_record"),
    Hostile("not-json.jsonl", b"this is not json\n", reject="bad_record"),
    Hostile("a-zip.txt", _zip(), reject="binary"),
    Hostile("utf16-bom.txt", LTR.encode("utf-16"), text=LTR.strip()),
    Hostile("utf16-no-bom.txt", LTR.encode("utf-16-le"), text=LTR.strip()),
    Hostile("utf8-bom.txt", b"\xef\xbb\xbf" + LTR.encode(), text=LTR.strip()),
    Hostile("mixed-encodings.txt",
            "Caf\u00e9 au lait \u2013 \u201cquoted\u201d.\n\n".encode() + "Ni\u00f1o espa\u00f1ol.\n".encode("cp1252"),
            text="Caf\u00e9 au lait \u2013 \u201cquoted\u201d.\n\nNi\u00f1o espa\u00f1ol."),
    Hostile("invalid-utf8-mid-text.txt",
            "A \u201cUTF-8\u201d text with a broken ".encode() + b"\xc3\x28" + " character in it.\n".encode(),
            text="A \u201cUTF-8\u201d text with a broken \u00c3( character in it."),
    Hostile("encoded-surrogate.txt", "Text \u2014 then ".encode() + b"\xed\xa0\x80" + b" an encoded surrogate.\n",
            text="Text \u2014 then \ufffd an encoded surrogate."),
    Hostile("escaped-surrogate.txt", b"Text with an escaped surrogate \\ud83d written out.\n",
            text="Text with an escaped surrogate \\ud83d written out."),
    Hostile("all-punctuation.txt", b"!!! ??? ... --- *** ///\n", text="!!! ??? ... --- *** ///"),
    Hostile("all-digits.txt", b"1234 5678 9012\n\n3456 7890\n", text="1234 5678 9012\n\n3456 7890"),
    Hostile("right-to-left.txt",
            "\u0647\u0630\u0627 \u0646\u0635 \u0639\u0631\u0628\u064a \u0637\u0648\u064a\u0644 \u0628\u0645\u0627 "
            "\u064a\u0643\u0641\u064a. \u0648\u0647\u0630\u0647 \u062c\u0645\u0644\u0629 \u062b\u0627\u0646\u064a\u0629.\n".encode()),
    Hostile("combining-and-emoji.txt",
            "Cafe\u0301 cre\u0300me \U0001F44D\U0001F3FD. Family \U0001F468\u200d\U0001F469\u200d\U0001F467 here.\n".encode(),
            text="Caf\u00e9 cr\u00e8me \U0001F44D\U0001F3FD. Family \U0001F468\u200d\U0001F469\u200d\U0001F467 here."),
    Hostile("windows-line-endings.txt", LTR.replace("\n", "\r\n").encode(), text=LTR.strip()),
    Hostile("old-mac-line-endings.txt", LTR.replace("\n", "\r").encode(), text=LTR.strip()),
    Hostile("only-site-chrome.txt", b"Skip to content\n\nMenu\n\nSign up for our newsletter by email\n\n"
                                    b"Make a donation to Example News\n\nRead more\n", text=""),
    Hostile("name with spaces.txt", LTR.encode(), text=LTR.strip()),
    Hostile("new\nline.txt", LTR.encode(), text=LTR.strip()),
    Hostile("-leading-dash.txt", LTR.encode(), text=LTR.strip()),
    Hostile("--help.txt", LTR.encode(), text=LTR.strip()),
]
BY_NAME = {h.name: h for h in CATALOGUE}


def _process(hostile: Hostile):
    raw = RawFile(hostile.name, sha256_hex(hostile.data), len(hostile.data), DocMeta("hostile"))
    return process_file(raw, hostile.data)


@pytest.mark.parametrize("hostile", CATALOGUE, ids=[h.name.replace("\n", "\\n") for h in CATALOGUE])
def test_each_hostile_input_has_its_expected_outcome(hostile):
    rows = _process(hostile)
    if hostile.reject:
        assert [r["error_kind"] for r in rows.rejects] == [hostile.reject]
        assert rows.rejects[0]["message"].startswith((hostile.name + ": ", hostile.name + " line "))
        assert not rows.documents and not rows.sentences
        return
    assert not rows.rejects
    (document,) = rows.documents
    if hostile.text is not None:
        assert document["clean_text"] == hostile.text
    assert_sentences_cover(document["clean_text"], [SimpleNamespace(**s) for s in rows.sentences])
    for sentence in rows.sentences:  # offsets are code points into the clean text
        assert document["clean_text"][sentence["char_start"] : sentence["char_end"]] == sentence["text"]


def test_mixed_and_broken_utf8_keep_their_text_and_say_how_it_was_read():
    assert _process(BY_NAME["mixed-encodings.txt"]).documents[0]["encoding"] == "utf-8+cp1252"
    assert _process(BY_NAME["utf16-no-bom.txt"]).documents[0]["encoding"] == "utf-16-le"


def test_text_without_letters_has_sentences_without_a_language():
    rows = _process(BY_NAME["all-digits.txt"])
    assert [s["lang"] for s in rows.sentences] == [None, None]
    assert rows.documents[0]["lang"] is None


def test_right_to_left_text_is_split_and_labelled():
    rows = _process(BY_NAME["right-to-left.txt"])
    assert len(rows.sentences) == 2 and {s["lang"] for s in rows.sentences} == {"ar"}


def test_emoji_and_combining_marks_count_as_code_points():
    rows = _process(BY_NAME["combining-and-emoji.txt"])
    text = rows.documents[0]["clean_text"]
    first = "Caf\u00e9 cr\u00e8me \U0001F44D\U0001F3FD."
    assert [(s["char_start"], s["char_end"]) for s in rows.sentences] == [(0, len(first)), (len(first) + 1, len(text))]
    assert len(first) == 14  # code points: the emoji and its skin tone are two, NFC made é one


def test_a_document_of_only_site_chrome_has_no_sentences_and_every_line_audited():
    rows = _process(BY_NAME["only-site-chrome.txt"])
    assert rows.documents[0]["n_sentences"] == 0 and not rows.sentences
    assert [r["rule"] for r in rows.removed] == [
        "chrome.navigation", "chrome.navigation", "chrome.newsletter_signup", "chrome.donation", "chrome.navigation"]


def test_a_file_of_one_50_mb_line_is_rejected_with_the_limit_named(tmp_path):
    data = b"word " * 10_000_000
    rows = process_file(RawFile("one-line.txt", sha256_hex(data), len(data), DocMeta("s")), data)
    assert [r["error_kind"] for r in rows.rejects] == ["line_too_long"]
    assert "50000000 characters" in rows.rejects[0]["message"] and "rules.toml" in rows.rejects[0]["message"]


def test_a_500_mb_file_is_rejected_by_the_size_limit_without_being_read(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    with open(raw / "huge.txt", "wb") as handle:
        handle.truncate(500 * 2**20)  # sparse: 500 MB that cost no disk
    found = inventory(raw)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("the huge file was read"))
    reject = read_raw(raw, found.files[0])
    assert reject.error_kind == "too_large" and "104857600" in reject.message


# --- names, links, sidecar, permissions ---------------------------------------------------------


def test_a_non_utf8_file_name_is_a_reject_naming_the_bytes(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "good.txt").write_bytes(LTR.encode())
    with open(os.path.join(os.fsencode(raw), b"bad\xffname.txt"), "wb") as handle:
        handle.write(LTR.encode())
    found = inventory(raw)
    assert [f.raw_path for f in found.files] == ["good.txt"]
    assert [(r.raw_path, r.error_kind) for r in found.rejects] == [("bad\\xffname.txt", "bad_name")]


def test_links_are_followed_only_inside_raw(tmp_path):
    raw, outside = tmp_path / "raw", tmp_path / "outside"
    raw.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET outside raw")
    (raw / "a.txt").write_text(LTR)
    os.symlink(raw / "a.txt", raw / "inside-link.txt")
    os.symlink(outside / "secret.txt", raw / "outside-link.txt")
    os.symlink(outside, raw / "outside-folder")
    os.symlink(raw / "missing.txt", raw / "broken-link.txt")
    os.mkfifo(raw / "a-fifo.txt")
    found = inventory(raw)
    assert [f.raw_path for f in found.files] == ["a.txt", "inside-link.txt"]
    assert sorted((r.raw_path, r.error_kind) for r in found.rejects) == [
        ("a-fifo.txt", "not_a_file"), ("broken-link.txt", "broken_link"),
        ("outside-folder", "outside_raw"), ("outside-link.txt", "outside_raw")]


def test_a_link_re_pointed_outside_after_planning_is_not_read(tmp_path):
    raw, outside = tmp_path / "raw", tmp_path / "outside.txt"
    raw.mkdir()
    (raw / "a.txt").write_text(LTR)
    os.symlink(raw / "a.txt", raw / "link.txt")
    planned = {f.raw_path: f for f in inventory(raw).files}["link.txt"]
    outside.write_text(LTR)  # same bytes, so only the location check can stop the read
    (raw / "link.txt").unlink()
    os.symlink(outside, raw / "link.txt")
    assert read_raw(raw, planned).error_kind == "outside_raw"


def test_a_sidecar_naming_paths_outside_raw_is_rejected_and_nothing_outside_is_read(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text(LTR)
    (raw / "_sources.toml").write_text(
        '[sources.s]\nname = "S"\n[files."../../etc/passwd"]\nsource = "s"\n[files."/etc/shadow"]\nsource = "s"\n')
    opened: list[str] = []
    real_open = open

    def watching_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching_open)
    found = inventory(raw)
    assert [r.error_kind for r in found.rejects] == ["metadata", "metadata"]
    assert all("points outside the raw folder" in r.message for r in found.rejects)
    assert [f.raw_path for f in found.files] == ["a.txt"]
    assert not [path for path in opened if "passwd" in path or "shadow" in path]


def test_a_malformed_sidecar_is_one_reject_and_the_files_still_load(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text(LTR)
    (raw / "_sources.toml").write_bytes(b"[sources.s\nname = \xff")
    found = inventory(raw)
    assert [f.raw_path for f in found.files] == ["a.txt"]
    assert [r.error_kind for r in found.rejects] == ["metadata"]


@pytest.mark.parametrize("locked, denied_call, message", [
    ("locked.txt", "hash_file", "locked.txt: cannot read: Permission denied"),
    ("locked", "scandir", "locked: cannot list this folder: Permission denied"),
])
def test_an_unreadable_file_or_folder_is_a_reject_and_the_others_load(tmp_path, monkeypatch, locked, denied_call,
                                                                        message):
    # chmod 000 does not stop root (CI runs as root), so the permission error is injected.
    from flows.stages import ingest

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text(LTR)
    if denied_call == "scandir":
        (raw / locked).mkdir()
        (raw / locked / "b.txt").write_text(LTR)
    else:
        (raw / locked).write_text(LTR)
    module = os if denied_call == "scandir" else ingest
    real_call = getattr(module, denied_call)

    def denying(path):
        if Path(path).name == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_call(path)

    monkeypatch.setattr(module, denied_call, denying)
    found = inventory(raw)
    assert [f.raw_path for f in found.files] == ["a.txt"]
    assert [(r.raw_path, r.error_kind, r.message) for r in found.rejects] == [(locked, "unreadable", message)]


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["release", "../../evil", "--warehouse", "{wh}"], "is not MAJOR.MINOR.PATCH"),
    (["release", "1.0.0/../../x", "--warehouse", "{wh}"], "is not MAJOR.MINOR.PATCH"),
    (["release", "1.0.0\n", "--warehouse", "{wh}"], "is not MAJOR.MINOR.PATCH"),  # `$` matched before a newline
    (["release", "1\u0661.0.0", "--warehouse", "{wh}"], "is not MAJOR.MINOR.PATCH"),  # an Arabic-Indic digit
    (["sql", "--at", "../1", "--warehouse", "{wh}", "SELECT 1"], "--at takes a snapshot number or a release version"),
    (["download", "http://127.0.0.1:9/", "../x", "{dest}"], "is not MAJOR.MINOR.PATCH"),
])
def test_version_and_path_arguments_are_validated(tmp_path, args, message):
    from click.testing import CliRunner

    from flows.interface.cli import main

    wh = tmp_path / "wh"
    corpus("run", str(SAMPLE), "--warehouse", str(wh))
    args = [a.format(wh=wh, dest=tmp_path / "dest") for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "dest").exists()
    assert not (wh / "releases").exists()


def test_an_existing_release_is_never_overwritten(tmp_path):
    wh = tmp_path / "wh"
    corpus("run", str(SAMPLE), "--warehouse", str(wh))
    corpus("release", "1.0.0", "--warehouse", str(wh))
    manifest = (wh / "releases" / "1.0.0" / "manifest.json").read_bytes()
    from click.testing import CliRunner

    from flows.interface.cli import main

    result = CliRunner().invoke(main, ["release", "1.0.0", "--warehouse", str(wh)])
    assert result.exit_code == 1 and "already exists" in result.output
    assert (wh / "releases" / "1.0.0" / "manifest.json").read_bytes() == manifest


# --- full disk ----------------------------------------------------------------------------------


def _run_cli(raw: Path, wh: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows", "run", str(raw), "--warehouse", str(wh), "--workers", "1"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=300)


def _error_line(result: subprocess.CompletedProcess) -> str:
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("corpus: error: ")]
    return line


def _snapshot_and_sentences(wh: Path) -> tuple[str, str]:
    return (corpus("sql", "--warehouse", str(wh), "--format", "csv", "SELECT max(snapshot_id) FROM runs"),
            corpus("sql", "--warehouse", str(wh), "--format", "csv", "SELECT * FROM sentences ORDER BY ALL"))


@pytest.mark.parametrize("point", ["staging", "publish"])
def test_a_full_disk_fails_the_run_clearly_and_keeps_the_previous_snapshot(tmp_path, sample_copy, point):
    wh = tmp_path / "wh"
    corpus("run", str(sample_copy), "--warehouse", str(wh))
    before = _snapshot_and_sentences(wh)
    (sample_copy / "new.txt").write_text(LTR)
    result = _run_cli(sample_copy, wh, CORPUS_FAULT=f"full-disk:{point}")
    assert result.returncode == 1
    assert "committed nothing (the warehouse is unchanged)" in result.stderr
    # The CLI says it in one line (Prefect's own task log may show the exception's traceback:
    # that is the orchestrator's log, kept for operators).
    assert "No space left on device" in _error_line(result)
    assert _snapshot_and_sentences(wh) == before
    assert not any((wh / "staging" / "runs").iterdir())  # the failed run's staging was freed


def test_a_real_full_filesystem_keeps_the_previous_snapshot(tmp_path, sample_copy):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(tiny)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root); the simulated full disk is tested above")
    try:
        wh = tiny / "wh"
        corpus("run", str(sample_copy), "--warehouse", str(wh))
        before = _snapshot_and_sentences(wh)
        free = os.statvfs(tiny).f_bavail * os.statvfs(tiny).f_frsize
        (tiny / "filler").write_bytes(b"\0" * (free - 64 * 1024))  # leave 64 KB
        for path in sorted(SAMPLE.glob("*.txt")):
            (sample_copy / f"copy-{path.name}").write_bytes(path.read_bytes() + b"\n\nA copy.\n")
        result = _run_cli(sample_copy, wh)
        assert result.returncode == 1, result.stdout[-2000:]
        assert "committed nothing" in _error_line(result)
        (tiny / "filler").unlink()
        assert _snapshot_and_sentences(wh) == before
    finally:
        subprocess.run(["umount", str(tiny)], check=False)


# --- everything at once -------------------------------------------------------------------------


def test_a_run_over_all_of_them_plus_the_sample(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(SAMPLE, raw)
    hostile_dir = raw / "hostile"
    hostile_dir.mkdir()
    for hostile in CATALOGUE:
        (hostile_dir / hostile.name).write_bytes(hostile.data)
    (hostile_dir / "one-long-line.txt").write_bytes(b"word " * 10_000_000)
    with open(hostile_dir / "huge.txt", "wb") as handle:
        handle.truncate(500 * 2**20)
    with open(os.path.join(os.fsencode(hostile_dir), b"bad\xffname.txt"), "wb") as handle:
        handle.write(LTR.encode())
    os.symlink(SAMPLE.parent.parent / "README.md", hostile_dir / "outside-link.txt")
    wh, clean_wh = tmp_path / "wh", tmp_path / "clean"

    output = corpus("run", str(raw), "--warehouse", str(wh), expect=3)
    assert "(completed with rejects)" in output
    corpus("run", str(SAMPLE), "--warehouse", str(clean_wh))

    def sample_sentences(warehouse: Path) -> str:
        return corpus("sql", "--warehouse", str(warehouse), "--format", "csv",
                      "SELECT s.* EXCLUDE (source_id) FROM sentences s JOIN documents d USING (doc_id) "
                      "WHERE d.raw_path NOT LIKE 'hostile/%' ORDER BY ALL")

    assert sample_sentences(wh) == sample_sentences(clean_wh)
    accounted = corpus("sql", "--warehouse", str(wh), "--format", "csv",
                       "SELECT raw_path, 'document' FROM documents UNION ALL SELECT raw_path, error_kind FROM rejects ORDER BY 1")
    expected = {f"hostile/{h.name}": h.reject or "document" for h in CATALOGUE}
    expected.update({"hostile/one-long-line.txt": "line_too_long", "hostile/huge.txt": "too_large",
                     "hostile/bad\\xffname.txt": "bad_name", "hostile/outside-link.txt": "outside_raw"})
    import csv

    rows = {path: kind for path, kind in list(csv.reader(io.StringIO(accounted)))[1:]}
    assert {path: rows.get(path) for path in expected} == expected
