import codecs
import os

import pytest

from flows.ingest import RawDirError, SIDECAR_NAME, decode, discover, inventory, read_sidecar
from flows.records import Reject, sha256_hex


def test_utf8_decodes_as_is():
    assert decode("Caf\u00e9 \u201cquoted\u201d".encode(), "a.txt") == ("Caf\u00e9 \u201cquoted\u201d", "utf-8")


def test_utf8_bom_is_dropped():
    assert decode(codecs.BOM_UTF8 + b"Hello", "a.txt") == ("Hello", "utf-8-sig")


def test_utf16_with_bom():
    assert decode("Gr\u00fc\u00dfe aus Berlin".encode("utf-16"), "a.txt") == ("Gr\u00fc\u00dfe aus Berlin", "utf-16")


def test_single_latin1_byte_reads_as_cp1252():
    # As in the BBC corpus: one 0xA3 (pound sign) in otherwise ASCII text.
    data = b"The deal is worth \xa3600m to the club, the chairman said."
    assert decode(data, "a.txt") == ("The deal is worth \u00a3600m to the club, the chairman said.", "cp1252")


def test_cyrillic_cp1251_is_not_mistaken_for_western():
    text = "Москва — столица России, крупнейший город страны и её политический центр. " * 5
    decoded, encoding = decode(text.encode("cp1251"), "ru.txt")
    assert decoded == text
    assert encoding.replace("_", "-") in {"cp1251", "windows-1251"}


@pytest.mark.parametrize(
    "data, kind, reason",
    [
        (b"", "empty", "a.txt: file is empty (0 bytes)"),
        (b"  \n\t\n", "empty", "a.txt: contains only whitespace"),
        (b"%PDF-1.4\n...", "binary", "a.txt: is a PDF document, not text"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "binary", "a.txt: is a JPEG image, not text"),
        (b"\x1f\x8b\x08\x00", "binary", "a.txt: is gzip-compressed data, not text"),
        (b"abc\x00def", "binary", "a.txt: contains NUL bytes: binary data, not text"),
    ],
)
def test_bad_bytes_are_rejects_with_reasons(data, kind, reason):
    result = decode(data, "a.txt")
    assert isinstance(result, Reject)
    assert (result.error_kind, result.message) == (kind, reason)
    assert result.raw_bytes == len(data)


def test_undecodable_bytes_are_a_reject():
    data = bytes(range(0x80, 0x100)) * 8
    result = decode(data, "junk.txt")
    assert isinstance(result, Reject)
    assert result.error_kind == "undecodable"
    assert result.message.startswith("junk.txt: is not UTF-8 and no character set fits")


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


def test_an_ambiguous_legacy_encoding_is_a_reject_not_a_guess():
    # Czech in ISO-8859-2 reads equally well, and differently, as cp1250: no honest answer.
    text = "Příliš žluťoučký kůň úpěl ďábelské ódy. " * 6
    result = decode(text.encode("iso-8859-2"), "cz.txt")
    assert isinstance(result, Reject)
    assert result.error_kind == "undecodable"
    assert "ambiguous: reads as cp1250 or, differently, as" in result.message
    assert decode(text.encode("cp1250"), "cz.txt") == (text, "cp1250")


def test_western_latin1_text_decodes():
    text = "Ça me plaît beaucoup, élève à l'école où j'étais. " * 5
    assert decode(text.encode("latin-1"), "fr.txt") == (text, "cp1252")


def test_known_hashes_spare_rereading_unchanged_files_only(tmp_path, monkeypatch):
    from flows import ingest

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


def test_a_hash_cache_in_the_older_format_counts_as_empty(tmp_path):
    from flows.warehouse import Warehouse

    wh = Warehouse(tmp_path / "wh")
    wh.save_hash_cache({"a.txt": [[5, 1, 2, 3], "ab" * 32]})  # (stat key, sha) pairs, as before
    assert wh.load_hash_cache() == {}
    wh.save_hash_cache({"a.txt": "5 1 2 3 " + "ab" * 32})
    assert wh.load_hash_cache() == {"a.txt": "5 1 2 3 " + "ab" * 32}
