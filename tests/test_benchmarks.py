"""The benchmark corpus generator: deterministic, sized as asked, with the artefacts it promises."""

import subprocess
import sys

from benchmarks import make_corpus
from tests.conftest import SAMPLE


def _files(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    articles = make_corpus.load_paragraphs(SAMPLE)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        make_corpus.generate(tmp_path / name, articles, seed, max_docs=60, max_bytes=None)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")


def test_size_in_bytes_stops_at_the_first_document_past_it(tmp_path):
    written = make_corpus.generate(tmp_path / "raw", make_corpus.load_paragraphs(SAMPLE), 0, None, 1_000_000)
    sizes = [len(data) for name, data in _files(tmp_path / "raw").items() if name.endswith(".txt")]
    assert written["bytes"] == sum(sizes) and 0 <= sum(sizes) - 1_000_000 < max(sizes)


def test_artefacts(tmp_path):
    written = make_corpus.generate(tmp_path / "raw", make_corpus.load_paragraphs(SAMPLE), 0, 600, None)
    files = _files(tmp_path / "raw")
    texts = [data.decode("utf-8", errors="replace") for name, data in files.items() if name.endswith(".txt")]
    assert written["documents"] == len(texts) == 600
    assert "_sources.toml" in files and written["duplicates"] > 0 and written["cp1252"] > 0
    assert sum("Skip to content" in t for t in texts) > len(texts) / 2           # site chrome
    assert sum("Public domain" in t for t in texts) > len(texts) / 10            # captions
    assert sum("Comments so far" in t for t in texts) > len(texts) / 20          # comment threads
    assert any("\u00e2\u20ac" in t for t in texts)                                # mojibake


def test_compare_times_two_revisions_and_checks_their_rows():
    root = SAMPLE.parent.parent
    result = subprocess.run([sys.executable, "benchmarks/compare.py", "HEAD", ".", "--raw", str(SAMPLE), "--rounds", "1"],
                            cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("8 files, 1 rounds") for line in lines), result.stdout
    assert any(line.strip().startswith(". / HEAD: fingerprint") for line in lines), result.stdout
    uncommitted = subprocess.run(["git", "status", "--porcelain", "flows"], cwd=root, capture_output=True, text=True).stdout
    if not uncommitted:  # the same stage code on both sides gives the same rows
        assert "rows: identical in every table" in lines, result.stdout


def test_the_two_phrase_scans_find_the_same_sentences(sample_warehouse):
    from benchmarks import bench

    ilike, regexp = (bench.QUERIES[f"sentences containing a phrase, scanned (SQL {how})"]
                     .replace("interest rates", "Socialism in one country")
                     for how in ("ILIKE", "regexp_matches, case-insensitive"))
    found = bench._query(sample_warehouse, regexp)
    assert len(found) == 7 and found == bench._query(sample_warehouse, ilike)  # 1 case-sensitively


def test_the_reference_workload_runs_the_pinned_libraries():
    from benchmarks import bench

    assert 0 < bench.reference_seconds(tries=1) < 60
