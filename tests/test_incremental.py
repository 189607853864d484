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
    deleted = corpus("sql", "--warehouse", str(wh), "--format", "csv",
                     "SELECT n_sentences, n_sentences_deleted FROM runs ORDER BY snapshot_id")
    assert deleted == "n_sentences,n_sentences_deleted\n1,0\n2,1\n"


def _diff(wh: Path, old: int, new: int) -> dict:
    out = corpus("diff", str(old), str(new), "--warehouse", str(wh), "--format", "json", "--rows")
    found: dict = {}
    for row in json.loads(out):
        found.setdefault(row["change"], []).append(row["detail"])
    return found


def test_add_change_delete_across_runs_with_diffs_and_time_travel(tmp_path):
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    raw.mkdir()
    (raw / "keep.txt").write_text("This file never changes.")
    (raw / "edit.txt").write_text("The first version.")
    (raw / "drop.txt").write_text("This file will be deleted.")
    corpus("run", str(raw), "--warehouse", str(wh))                      # snapshot 1
    (raw / "new.txt").write_text("A new file arrives.")
    corpus("run", str(raw), "--warehouse", str(wh))                      # 2: add
    (raw / "edit.txt").write_text("The second version.")
    corpus("run", str(raw), "--warehouse", str(wh))                      # 3: change
    (raw / "drop.txt").unlink()
    corpus("run", str(raw), "--warehouse", str(wh))                      # 4: delete
    corpus("run", str(raw), "--warehouse", str(wh))                      # 5: nothing

    def paths(at: int) -> str:
        return corpus("sql", "--warehouse", str(wh), "--at", str(at), "--format", "csv",
                      "SELECT raw_path, text FROM documents JOIN sentences USING (doc_id) ORDER BY 1")

    assert paths(1) == ("raw_path,text\ndrop.txt,This file will be deleted.\nedit.txt,The first version.\n"
                        "keep.txt,This file never changes.\n")
    assert paths(4) == "raw_path,text\nedit.txt,The second version.\nkeep.txt,This file never changes.\nnew.txt,A new file arrives.\n"
    assert paths(5) == paths(4)

    assert _diff(wh, 1, 2) == {"documents added": ["new.txt"], "sentences added": ["A new file arrives."]}
    assert _diff(wh, 2, 3) == {"documents changed": ["edit.txt"], "sentences added": ["The second version."],
                               "sentences removed": ["The first version."]}
    assert _diff(wh, 3, 4) == {"documents removed": ["drop.txt"], "sentences removed": ["This file will be deleted."]}
    assert _diff(wh, 4, 5) == {}

    versions = json.loads(corpus("versions", "--warehouse", str(wh), "--format", "json"))
    assert [v["data_changes"] for v in versions] == [
        "none", "documents, files, sentences, sources", "documents, files, sentences",
        "documents, files, sentences", "documents, files, sentences", "none",
    ]


def _versions(wh: Path, at: int | None = None) -> list[dict]:
    at_args = ["--at", str(at)] if at else []
    return json.loads(corpus("sql", "--warehouse", str(wh), "--format", "json", *at_args,
                             "SELECT raw_path, raw_record, is_latest, duplicate_of IS NOT NULL AS duplicate "
                             "FROM documents ORDER BY raw_path, raw_record"))


def test_version_flags_follow_the_files_that_hold_the_versions(tmp_path):
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    (raw / "site").mkdir(parents=True)
    page = '{"url": "https://example.org/p", "fetched": "2024-01-0%dT00:00:00Z", "text": "%s"}\n'
    (raw / "site" / "a.jsonl").write_text(page % (1, "The first words of the page."))
    (raw / "site" / "b.jsonl").write_text(page % (2, "The first words of the page."))
    corpus("run", str(raw), "--warehouse", str(wh))
    assert _versions(wh) == [
        {"raw_path": "site/a.jsonl", "raw_record": 1, "is_latest": False, "duplicate": False},
        {"raw_path": "site/b.jsonl", "raw_record": 1, "is_latest": True, "duplicate": True},
    ]
    # A newer version with other text: it becomes the latest, b is no longer a duplicate of it.
    (raw / "site" / "c.jsonl").write_text(page % (3, "The page, rewritten."))
    (raw / "site" / "a.jsonl").unlink()
    corpus("run", str(raw), "--warehouse", str(wh))
    assert _versions(wh) == [
        {"raw_path": "site/b.jsonl", "raw_record": 1, "is_latest": False, "duplicate": False},
        {"raw_path": "site/c.jsonl", "raw_record": 1, "is_latest": True, "duplicate": False},
    ]
    assert _versions(wh, at=1)[1] == {"raw_path": "site/b.jsonl", "raw_record": 1, "is_latest": True, "duplicate": True}


def test_a_changed_line_replaces_the_whole_files_rows(tmp_path):
    raw, wh = tmp_path / "raw", tmp_path / "wh"
    (raw / "feed").mkdir(parents=True)
    lines = [json.dumps({"text": f"Post {n} says something new."}) for n in range(3)]
    (raw / "feed" / "f.jsonl").write_text("\n".join(lines) + "\n")
    corpus("run", str(raw), "--warehouse", str(wh))
    lines[1] = "[not an object]"
    (raw / "feed" / "f.jsonl").write_text("\n".join(lines) + "\n")
    corpus("run", str(raw), "--warehouse", str(wh), expect=3)
    out = json.loads(corpus("sql", "--warehouse", str(wh), "--format", "json",
                            "SELECT (SELECT list(raw_record ORDER BY raw_record) FROM documents) AS docs, "
                            "(SELECT list(raw_record) FROM rejects) AS rejects, "
                            "(SELECT list(n_documents || '/' || n_rejects) FROM files) AS files, "
                            "(SELECT count(*) FROM sentences) AS sentences"))
    assert out == [{"docs": [1, 3], "rejects": [2], "files": ["2/1"], "sentences": 2}]
