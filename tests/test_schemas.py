from datetime import date

import pytest

from flows import schemas
from flows.schemas import SchemaError


def _document_row(**overrides):
    row = {name: None for name in schemas.table("documents").column_names}
    row.update(
        page_id="d", doc_id="d", source_id="s", raw_path="a.txt", raw_sha256="0" * 64, raw_bytes=3,
        encoding="utf-8", format="text", clean_text="x", clean_sha256="1" * 64, n_lines=1,
        n_blocks=1, n_sentences=1, n_removed_lines=0, repaired_chars=0, normalised_chars=0,
        pipeline_version="v", published=date(2008, 1, 27), categories=["a", "b"], is_latest=True,
    )
    row.update(overrides)
    return row


def test_every_table_has_described_columns_and_a_version():
    assert schemas.schema_version() == "3.0.0"
    assert list(schemas.tables()) == ["documents", "sentences", "removed", "edits", "rejects", "files", "sources", "runs", "line_index"]
    for contract in schemas.tables().values():
        assert contract.columns and contract.sort_by
        assert all(c.description for c in contract.columns)
        assert set(contract.sort_by) <= set(contract.column_names)


def test_design_column_names_are_present():
    documents = schemas.table("documents").column_names
    for name in ["page_id", "source_id", "raw_path", "raw_sha256", "raw_bytes", "encoding",
                 "format", "title", "author", "published", "url", "lang", "lang_prob",
                 "clean_text", "clean_sha256"]:
        assert name in documents
    sentences = schemas.table("sentences").column_names
    for name in ["sentence_id", "page_id", "source_id", "section", "block_index",
                 "sentence_index", "char_start", "char_end", "text", "n_words", "lang",
                 "lang_prob", "comment_author"]:
        assert name in sentences


def test_valid_rows_become_a_typed_table():
    table = schemas.table("documents").to_arrow([_document_row()])
    assert table.num_rows == 1
    assert table.column("published").to_pylist() == [date(2008, 1, 27)]
    assert table.column("categories").to_pylist() == [["a", "b"]]


def test_null_in_non_nullable_column_is_rejected():
    with pytest.raises(SchemaError, match="page_id"):
        schemas.table("documents").to_arrow([_document_row(page_id=None)])


def test_missing_or_extra_key_is_rejected():
    row = _document_row()
    del row["title"]
    with pytest.raises(SchemaError, match="missing \\['title'\\]"):
        schemas.table("documents").to_arrow([row])
    with pytest.raises(SchemaError, match="extra \\['bogus'\\]"):
        schemas.table("documents").to_arrow([_document_row(bogus=1)])


def test_wrong_type_is_rejected():
    with pytest.raises(SchemaError, match="documents"):
        schemas.table("documents").to_arrow([_document_row(raw_bytes="three")])
