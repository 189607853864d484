"""Incremental runs: only new/changed files are processed, and documents whose output depends
on their source's other documents (cross-document repeats) are reprocessed when that changes."""

import json
from pathlib import Path

from tests.conftest import corpus

CHROME = "Subscribe to the Daily Bugle newsletter for more stories like this one"


def article(n: int) -> str:
    return f"Story number {n} begins with a plain sentence. It has a second one.\n\n{CHROME}\n"


def chrome_sentences(wh: Path) -> list[str]:
    out = corpus("sql", "--warehouse", str(wh), "--format", "json",
                 "SELECT d.raw_path FROM sentences s JOIN documents d USING (doc_id) "
                 f"WHERE s.text = '{CHROME}' ORDER BY 1")
    return [row["raw_path"] for row in json.loads(out)]


def test_a_line_becoming_repeated_reprocesses_older_documents(tmp_path):
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    (raw / "bugle").mkdir(parents=True)
    for n in (1, 2):
        (raw / "bugle" / f"{n}.txt").write_text(article(n))
    corpus("run", str(raw), "--warehouse", str(wh))
    assert chrome_sentences(wh) == ["bugle/1.txt", "bugle/2.txt"]  # 2 documents: not chrome yet

    (raw / "bugle" / "3.txt").write_text(article(3))
    output = corpus("run", str(raw), "--warehouse", str(wh))
    assert "(1 new, 0 changed, 2 reprocessed for repeats, 0 unchanged, 0 deleted)" in output
    assert chrome_sentences(wh) == []
    removed = corpus("sql", "--warehouse", str(wh), "--format", "csv",
                     "SELECT rule, count(*) AS n FROM removed GROUP BY rule")
    assert removed == "rule,n\nrepeat.cross_document,3\n"

    (raw / "bugle" / "3.txt").unlink()
    output = corpus("run", str(raw), "--warehouse", str(wh))
    assert "(0 new, 0 changed, 2 reprocessed for repeats, 0 unchanged, 1 deleted)" in output
    assert chrome_sentences(wh) == ["bugle/1.txt", "bugle/2.txt"]

    output = corpus("run", str(raw), "--warehouse", str(wh))
    assert "(0 new, 0 changed, 0 reprocessed for repeats, 2 unchanged, 0 deleted)" in output


def test_a_changed_file_replaces_its_rows_and_earlier_snapshots_keep_them(tmp_path):
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    raw.mkdir()
    (raw / "a.txt").write_text("The first version of the text.")
    corpus("run", str(raw), "--warehouse", str(wh))
    (raw / "a.txt").write_text("The second version. It has two sentences.")
    corpus("run", str(raw), "--warehouse", str(wh))
    now = corpus("sql", "--warehouse", str(wh), "--format", "csv", "SELECT text FROM sentences ORDER BY char_start")
    before = corpus("sql", "--warehouse", str(wh), "--at", "1", "--format", "csv", "SELECT text FROM sentences")
    assert now == "text\nThe second version.\nIt has two sentences.\n"
    assert before == "text\nThe first version of the text.\n"
