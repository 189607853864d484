import os

import pytest

from flows.stages.ingest import RawDirError, SIDECAR_NAME, discover, inventory, read_sidecar
from flows.stages.records import sha256_hex


def test_discover_skips_hidden_files_and_the_sidecar(tmp_path):
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    (tmp_path / ".hidden").write_text("h")
    (tmp_path / SIDECAR_NAME).write_text("")
    assert [e.rel for e in discover(tmp_path)] == ["b.txt", "sub/a.txt"]


def test_symlink_leaving_the_raw_folder_is_not_followed(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    (raw / "a.txt").write_text("inside")
    os.symlink(tmp_path / "secret.txt", raw / "link.txt")
    found = inventory(raw)
    assert [f.raw_path for f in found.files] == ["a.txt"]
    assert [(r.raw_path, r.error_kind) for r in found.rejects] == [("link.txt", "outside_raw")]


def test_missing_and_empty_raw_folders_are_clear_errors(tmp_path):
    with pytest.raises(RawDirError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(RawDirError, match="contains no files"):
        discover(tmp_path)


def test_sidecar_assigns_sources_and_rejects_bad_entries(tmp_path):
    (tmp_path / "a.txt").write_text("text")
    (tmp_path / SIDECAR_NAME).write_text(
        '[sources.blog]\nname = "A Blog"\nkind = "blog"\n'
        '[files."a.txt"]\nsource = "blog"\n'
        '[files."../../etc/passwd"]\nsource = "blog"\n'
        '[files."b.txt"]\nsource = "nobody"\n'
    )
    sources, metas, rejects = read_sidecar(tmp_path)
    assert sources["blog"].name == "A Blog"
    assert metas["a.txt"].source_id == "blog"
    assert [r.message for r in rejects] == [
        "entry '../../etc/passwd' points outside the raw folder",
        "entry 'b.txt' names unknown source 'nobody'",
    ]


def test_malformed_sidecar_is_a_reject_and_files_still_load(tmp_path):
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "a.txt").write_text("text")
    (tmp_path / SIDECAR_NAME).write_text("[sources\nbroken")
    found = inventory(tmp_path)
    assert [f.raw_path for f in found.files] == ["news/a.txt"]
    assert found.files[0].meta.source_id == "news"  # folder name when no sidecar says otherwise
    assert found.rejects[0].error_kind == "metadata"
    assert found.rejects[0].message.startswith("_sources.toml is not valid TOML")


def test_known_hashes_spare_rereading_unchanged_files_only(tmp_path, monkeypatch):
    from flows.stages import ingest

    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("beta")
    hashes: dict = {}
    first = inventory(tmp_path, hashes)
    assert set(hashes) == {"a.txt", "b.txt"}
    (tmp_path / "b.txt").write_text("BETA")  # same size, new bytes: the stat key changes (ctime)
    read: list[str] = []
    real_hash = ingest.hash_file
    monkeypatch.setattr(ingest, "hash_file", lambda path: read.append(path.name) or real_hash(path))
    second = inventory(tmp_path, hashes)
    assert read == ["b.txt"]
    assert [f.raw_sha256 for f in second.files][0] == [f.raw_sha256 for f in first.files][0]
    assert second.files[1].raw_sha256 == sha256_hex(b"BETA")


def test_discover_walks_paths_in_plain_string_order(tmp_path):
    names = ["a.txt", "a/b.txt", "a/c/d.txt", "a0", "a-b", "ab/x.txt", "a b.txt", "A.txt", "é.txt", "a/c.txt"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert [e.rel for e in discover(tmp_path)] == sorted(names)
