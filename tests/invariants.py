"""Checks of the design's non-negotiables, shared by unit and end-to-end tests."""

from __future__ import annotations

from flows.stages.clean import split_lines
from flows.stages.repair import normalise_line
from flows.stages.records import Cleaned, Span


def assert_lines_accounted(raw_text: str, cleaned: Cleaned) -> None:
    """Every non-blank raw line is in exactly one block or one removed record."""
    non_blank = {
        number
        for number, line in enumerate(split_lines(raw_text), start=1)
        if normalise_line(line)[0]
    }
    owners: dict[int, str] = {}
    for block in cleaned.blocks:
        for n in range(block.line_start, block.line_end + 1):
            assert n not in owners, f"line {n} in block {block.index} and {owners[n]}"
            owners[n] = f"block {block.index}"
    for removed in cleaned.removed:
        for n in range(removed.line_start, removed.line_end + 1):
            assert n not in owners, f"line {n} removed by {removed.rule} and in {owners[n]}"
            owners[n] = removed.rule
    assert set(owners) == non_blank, f"unaccounted lines: {sorted(non_blank - set(owners))}"


def assert_sentences_cover(clean_text: str, spans: list[Span]) -> None:
    """Sentences are non-empty, ordered, non-overlapping and cover every non-space character."""
    covered = [0] * len(clean_text)
    previous_end = 0
    for span in spans:
        piece = clean_text[span.char_start : span.char_end]
        assert piece.strip(), f"empty sentence at {span}"
        assert piece == piece.strip(), f"sentence has outer whitespace: {piece!r}"
        assert span.char_start >= previous_end, f"overlap or disorder at {span}"
        previous_end = span.char_end
        for i in range(span.char_start, span.char_end):
            covered[i] += 1
    missed = [i for i, c in enumerate(clean_text) if not c.isspace() and covered[i] != 1]
    assert not missed, f"characters not in exactly one sentence: {missed[:10]}"


def assert_document_rows(rows) -> None:
    """What process_file gives for any input: one document or one reject (several of either
    for JSON Lines and WARC files), a files row that counts them, sentences that
    are exact slices of the clean text and cover it, and rows every table contract accepts
    (pyarrow refuses lone surrogates, so this also checks the text is valid Unicode)."""
    from types import SimpleNamespace

    from flows.stages.document import DOCUMENT_TABLES
    from flows.run.shards import rows_to_table

    (file_row,) = rows.files
    assert (file_row["n_documents"], file_row["n_rejects"]) == (len(rows.documents), len(rows.rejects))
    if file_row["format"] in ("text", "html"):
        assert len(rows.documents) + len(rows.rejects) == 1
    for document in rows.documents:
        sentences = [s for s in rows.sentences if s["doc_id"] == document["doc_id"]]
        for sentence in sentences:
            assert document["clean_text"][sentence["char_start"] : sentence["char_end"]] == sentence["text"]
        assert_sentences_cover(document["clean_text"], [SimpleNamespace(**s) for s in sentences])
    for reject in rows.rejects:
        assert reject["message"].startswith(reject["raw_path"])
    for name in DOCUMENT_TABLES:
        rows_to_table(name, getattr(rows, name))
