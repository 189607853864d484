"""Search: ranked search, phrase lookup and keyword in context over the sentences.

Takes a warehouse (and a snapshot); gives ranked sentences (BM25) with their document's title,
source and date, the sentences holding a phrase, and concordance lines (left context | match |
right context) cut from the stored clean text by offsets. Reads the snapshot's full-text index
(`search_index`), which a search builds when it finds none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb
import numpy

from flows.warehouse.search_index import FTS, index_connection
from flows.warehouse.catalog import LAKE, Warehouse, quote

SEARCH_COLUMNS = ["score", "text", "title", "source_id", "published", "lang", "sentence_id"]


def search(wh: Warehouse, query: str, limit: int = 10, source: str | None = None, lang: str | None = None,
           at: int | None = None) -> tuple[list[str], list[tuple]]:
    """Sentences ranked by BM25 for `query` (best first; ties by sentence id), with their
    document's title, source and publication date."""
    con, snapshot = index_connection(wh, at)
    try:
        rows = con.execute(
            f"""
            WITH top AS (
                SELECT * FROM (
                    SELECT *, {FTS}.match_bm25(sentence_id, ?) AS score FROM sentences
                    WHERE (? IS NULL OR source_id = ?) AND (? IS NULL OR lang = ?)
                ) WHERE score IS NOT NULL ORDER BY score DESC, sentence_id LIMIT ?
            )
            SELECT round(t.score, 3), t.text, d.title, t.source_id, d.published, t.lang, t.sentence_id
            FROM top t JOIN (SELECT doc_id, title, published FROM {LAKE}.documents AT (VERSION => {int(snapshot)})) d
                USING (doc_id)
            ORDER BY t.score DESC, t.sentence_id
            """,
            [query, source, source, lang, lang, int(limit)],
        ).fetchall()
    finally:
        con.close()
    return SEARCH_COLUMNS, rows


@dataclass(frozen=True)
class Concordance:
    left: str
    match: str
    right: str
    doc_id: str
    char_start: int  # of the match, in the document's clean text
    title: str | None
    source_id: str


def _one_line(text: str) -> str:
    return re.sub(r"\s", " ", text)


def phrase_pattern(phrase: str) -> re.Pattern | None:
    """The phrase as whole words, case-insensitive, a space matching any run of white space;
    None for a phrase of only white space."""
    words = phrase.split()
    if not words:
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    start = r"\b" if re.match(r"\w", words[0]) else ""
    end = r"\b" if re.search(r"\w$", words[-1]) else ""
    return re.compile(start + body + end, re.IGNORECASE)


# The phrase lookup's index queries take their values as literals, not bound parameters: the
# first query with parameters in a process makes DuckDB's Python client import pandas, a
# large share of a `corpus kwic`. (Search, with its user filters, and the rare scan of a phrase of stop
# words only, whose pattern may hold a NUL, keep parameters.)


def _phrase_terms(con: duckdb.DuckDBPyConnection, phrase: str) -> list[str]:
    """The index terms of the phrase's words, by the index's own tokenizer, stop words and
    stemmer."""
    # A NUL cannot be in an SQL literal; the tokenizer splits words at it as at a space.
    literal = quote(phrase.replace("\x00", " "))
    return [row[0] for row in con.execute(
        f"SELECT DISTINCT stem(word, 'porter') FROM (SELECT unnest({FTS}.tokenize({literal})) AS word) "
        f"WHERE word <> '' AND word NOT IN (SELECT sw FROM {FTS}.stopwords) ORDER BY 1").fetchall()]


def _candidates(con: duckdb.DuckDBPyConnection, phrase: str, pattern: re.Pattern) -> list[tuple]:
    """(doc_id, char_start, text) of the sentences that may hold the phrase, in document
    order: those whose index terms include every term of the phrase (a sentence holding the
    phrase as whole words has its words as tokens), or a scan when no word is indexed."""
    terms = _phrase_terms(con, phrase)
    if not terms:  # only stop words, or no letters or digits: nothing to look up
        return con.execute("SELECT doc_id, char_start, text FROM sentences WHERE regexp_matches(text, ?, 'i') "
                           "ORDER BY doc_id, char_start", [pattern.pattern.replace(r"\b", "")]).fetchall()
    term_ids = [int(row[0]) for row in con.execute(
        f"SELECT termid FROM {FTS}.dict WHERE term IN ({', '.join(quote(term) for term in terms)})").fetchall()]
    if len(term_ids) < len(terms):  # a word no sentence has
        return []
    return con.execute(
        f"""
        WITH hits AS (
            SELECT docid FROM {FTS}.terms WHERE termid IN ({', '.join(map(str, term_ids))})
            GROUP BY docid HAVING count(DISTINCT termid) = {len(term_ids)}
        )
        SELECT s.doc_id, s.char_start, s.text FROM hits JOIN sentences s USING (docid)
        ORDER BY s.doc_id, s.char_start
        """).fetchall()


@dataclass(frozen=True)
class PhraseMatch:
    doc_id: str
    sentence_start: int  # of the sentence, in the document's clean text
    sentence: str
    start: int  # of the match, in the document's clean text
    end: int


def _phrase_matches(con: duckdb.DuckDBPyConnection, phrase: str) -> list[PhraseMatch]:
    pattern = phrase_pattern(phrase)
    if pattern is None:
        return []
    return [PhraseMatch(doc_id, start, text, start + m.start(), start + m.end())
            for doc_id, start, text in _candidates(con, phrase, pattern) for m in pattern.finditer(text)]


def phrase_sentences(wh: Warehouse, phrase: str, at: int | None = None) -> list[PhraseMatch]:
    """Every occurrence of `phrase` as whole words within a sentence (case-insensitive, a space
    matching any run of white space), with its sentence, in document order. Sentences are
    looked up in the search index, not scanned."""
    con, _ = index_connection(wh, at)
    try:
        return _phrase_matches(con, phrase)
    finally:
        con.close()


def kwic(wh: Warehouse, phrase: str, width: int = 60, limit: int | None = None,
         at: int | None = None) -> list[Concordance]:
    """Every occurrence of `phrase` as whole words within a sentence (case-insensitive, a space
    matching any run of white space), with `width` characters of clean text either side, in
    document order. Sentences are looked up in the search index, not scanned."""
    if phrase_pattern(phrase) is None:
        return []
    con, snapshot = index_connection(wh, at)
    try:
        matches = _phrase_matches(con, phrase)[:limit]
        if not matches:
            return []
        # Handed over as arrays in one piece (row by row is slow for many matches), as NumPy's
        # rather than Arrow's: pyarrow converting Python lists imports pandas.
        con.register("kwic_matches", {
            "n": numpy.arange(len(matches)), "doc_id": numpy.array([m.doc_id for m in matches]),
            "s": numpy.array([m.start for m in matches]), "e": numpy.array([m.end for m in matches]),
        })
        # DuckDB's substr counts from 1, our offsets from 0: the windows are cut in the database,
        # so only 2 x width characters of each document travel.
        rows = con.execute(
            f"""
            SELECT substr(d.clean_text, greatest(m.s - {int(width)}, 0) + 1, m.s - greatest(m.s - {int(width)}, 0)),
                   substr(d.clean_text, m.s + 1, m.e - m.s),
                   substr(d.clean_text, m.e + 1, {int(width)}),
                   m.doc_id, m.s, d.title, d.source_id
            FROM kwic_matches m
            JOIN (SELECT doc_id, clean_text, title, source_id FROM {LAKE}.documents AT (VERSION => {int(snapshot)})) d
                USING (doc_id)
            ORDER BY m.n
            """
        ).fetchall()
    finally:
        con.close()
    return [Concordance(_one_line(left), _one_line(match), _one_line(right), doc_id, start, title, source)
            for left, match, right, doc_id, start, title, source in rows]


def kwic_lines(found: list[Concordance], width: int) -> list[str]:
    """Terminal lines: the left context right-aligned to `width`, so every match starts in the
    same column."""
    return [f"{c.left.rjust(width)} | {c.match} | {c.right}" for c in found]
