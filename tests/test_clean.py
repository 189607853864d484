import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.stages.clean import clean, line_hash, line_hashes, line_key, normalised_line_hash, parse_date, split_lines
from flows.stages.repair import normalise, normalise_line
from flows.stages.decode import decode
from flows.stages.ingest import read_sidecar
from flows.stages.segment import segment
from tests.conftest import FIXTURES, SAMPLE
from tests.invariants import assert_lines_accounted, assert_sentences_cover


def sections(cleaned):
    return [(b.section, cleaned.clean_text[b.char_start : b.char_end]) for b in cleaned.blocks]


def removals(cleaned):
    return [(r.line_start, r.rule) for r in cleaned.removed]


def test_odd_spaces_invisibles_and_controls_are_normalised_and_counted():
    text, repaired, normalised = normalise_line("Log\u00a0Out\u00a0/\u00a0 Change\u00ad\u200b\x07 ")
    assert text == "Log Out / Change"
    assert repaired == 0
    assert normalised > 0


def test_mojibake_is_repaired_but_typography_is_kept():
    text, repaired, _ = normalise_line("The Mona Lisa doesn\u00e2\u20ac\u2122t have eyebrows.")
    assert text == "The Mona Lisa doesn\u2019t have eyebrows."
    assert repaired > 0
    kept = "\u201cQuoted\u201d \u2014 and\u2026 \ufb01ne"
    assert normalise_line(kept) == (kept, 0, 0)


def test_title_standfirst_heading_body_and_chrome():
    doc = (
        "Downloading PDF. Please wait... Issue 2550\n\n"
        "A short title\n\n"
        "A standfirst that sums the piece up\n\n"
        "First paragraph of the article, long enough to be a real paragraph of body text here.\n\n"
        "A Heading\n\n"
        "Second paragraph of the article, also long enough to follow a heading as its body.\n\n"
        "Sign up for our daily email update \u2018Breakfast in Red\u2019\n"
    )
    cleaned = clean(doc)
    assert sections(cleaned) == [
        ("title", "A short title"),
        ("standfirst", "A standfirst that sums the piece up"),
        ("body", "First paragraph of the article, long enough to be a real paragraph of body text here."),
        ("heading", "A Heading"),
        ("body", "Second paragraph of the article, also long enough to follow a heading as its body."),
    ]
    assert removals(cleaned) == [(1, "chrome.pdf_download"), (13, "chrome.newsletter_signup")]
    assert cleaned.metadata == {"issue": "2550", "title": "A short title"}
    assert_lines_accounted(doc, cleaned)


def test_repeated_caption_keeps_one_copy_as_caption():
    caption = "Joseph Stalin in a secret police photo (above)"
    doc = f"Body text that opens the article and runs on for a while.\n\n{caption}\n\n{caption}\n\nMore body text."
    cleaned = clean(doc)
    assert sections(cleaned) == [
        ("body", "Body text that opens the article and runs on for a while."),
        ("caption", caption),
        ("body", "More body text."),
    ]
    assert removals(cleaned) == [(5, "repeat.duplicate_line")]


def test_list_items_lose_their_bullets():
    cleaned = clean("Intro paragraph that is clearly a sentence.\n\u2022 First item\n- Second item\n2. Third item")
    assert sections(cleaned) == [
        ("body", "Intro paragraph that is clearly a sentence."),
        ("list_item", "First item"),
        ("list_item", "Second item"),
        ("list_item", "Third item"),
    ]


def test_wordpress_comments_take_the_following_attribution():
    doc = "\n".join([
        "The post itself, with an argument that runs to a full sentence.",
        "3 Comments so far",
        "Leave a comment",
        "Great post, thanks.",
        "Comment by Alice",
        "I disagree with the second point.",
        "Comment by Bob",
        "[\u2026] linked from my blog [\u2026]",
        "Pingback by Some Blog \u00bb A Post",
        "Leave a Reply",
        "%d bloggers like this:",
    ])
    cleaned = clean(doc)
    assert [(b.section, b.comment_author) for b in cleaned.blocks] == [
        ("body", None), ("comment", "Alice"), ("comment", "Bob"),
    ]
    assert removals(cleaned) == [
        (2, "comment.thread_header"), (3, "comment.thread_header"), (5, "comment.attribution"),
        (7, "comment.attribution"), (8, "comment.pingback"), (9, "comment.pingback"),
        (10, "chrome.comment_form"), (11, "chrome.social_likes"),
    ]


def test_blog_head_metadata_moves_out_of_the_text():
    doc = (
        "Lair Of A Squirrel Red\n\nMaking sense of Stalinism. by korakious\n"
        "January 27, 2008, 12:04 am\nFiled under: Lenin, Trotskyists, USSR | Tags:\n\n"
        "A few days ago was the anniversary."
    )
    cleaned = clean(doc, source_name="Lair Of A Squirrel Red")
    assert sections(cleaned) == [("body", "A few days ago was the anniversary.")]
    assert removals(cleaned) == [
        (1, "chrome.site_name"), (3, "meta.byline_title"), (4, "meta.dateline"), (5, "meta.categories"),
    ]
    assert cleaned.metadata == {
        "title": "Making sense of Stalinism.", "author": "korakious",
        "published": "2008-01-27", "categories": "Lenin, Trotskyists, USSR",
    }


def test_offsets_of_blocks_point_into_clean_text():
    cleaned = clean("One paragraph here.\r\n\r\nAnother one there.\rThird.")
    assert cleaned.clean_text == "One paragraph here.\n\nAnother one there.\n\nThird."
    assert [(b.line_start, b.char_start, b.char_end) for b in cleaned.blocks] == [(1, 0, 19), (3, 21, 39), (4, 41, 47)]


def test_parse_date():
    assert parse_date("January 27, 2008") == "2008-01-27"
    assert parse_date("Smarch 1, 2008") is None


@pytest.mark.parametrize("path", sorted(SAMPLE.glob("*.txt")), ids=lambda p: p.name[:3])
def test_every_sample_line_and_character_is_accounted_for(path: Path):
    text, _ = decode(path.read_bytes(), path.name)
    cleaned = clean(text)
    assert_lines_accounted(text, cleaned)
    assert_sentences_cover(cleaned.clean_text, segment(cleaned.clean_text, cleaned.blocks))


def _expected_outcomes(prefix: str) -> dict[int, tuple[str, str]]:
    rows = (FIXTURES / "sample_lines" / f"{prefix}.tsv").read_text(encoding="utf-8").splitlines()
    expected = {}
    for row in rows:
        if row.startswith("#"):
            continue
        number, outcome, excerpt = row.split("\t")
        expected[int(number)] = (outcome, excerpt)
    return expected


@pytest.mark.parametrize("path", sorted(SAMPLE.glob("*.txt")), ids=lambda p: p.name[:3])
def test_sample_documents_line_by_line(path: Path):
    """Each sample line's fate, as decided by reading the document (tests/fixtures/sample_lines)."""
    sources, metas, _ = read_sidecar(SAMPLE)
    text, _ = decode(path.read_bytes(), path.name)
    cleaned = clean(text, sources[metas[path.name].source_id].name)
    actual = {}
    for block in cleaned.blocks:
        author = f" author={block.comment_author}" if block.comment_author else ""
        actual[block.line_start] = f"keep {block.section}{author}"
    for removed in cleaned.removed:
        actual[removed.line_start] = f"drop {removed.rule}"
    expected = _expected_outcomes(path.name[:3])
    raw_lines = split_lines(text)
    for number, (_, excerpt) in expected.items():
        assert raw_lines[number - 1].strip().startswith(excerpt), f"fixture out of step at line {number}"
    assert actual == {n: outcome for n, (outcome, _) in expected.items()}


def test_sample_metadata_read_from_the_text():
    sources, metas, _ = read_sidecar(SAMPLE)
    found = {}
    for path in sorted(SAMPLE.glob("*.txt")):
        text, _ = decode(path.read_bytes(), path.name)
        found[path.name[:3]] = clean(text, sources[metas[path.name].source_id].name).metadata
    assert found == {
        "000": {"issue": "2550", "title": "Stalin was the embodiment of a counter-revolution"},
        "001": {"author": "Patrick Nielsen", "title": "From the dream to a nightmare"},
        "002": {"issue": "1"},
        "003": {"title": "The Russian Revolution and the Rise of Stalinism"},
        "004": {"title": "Making sense of Stalinism.", "author": "korakious",
                "published": "2008-01-27", "categories": "Lenin, Trotskyists, USSR"},
    }


def test_glued_words_are_split_and_recorded():
    cleaned = clean("The Bolshevikhad won, and ourmovement grew; Djugashvili and Pingback stay.")
    assert cleaned.clean_text == "The Bolshevik had won, and our movement grew; Djugashvili and Pingback stay."
    assert [(e.rule, e.before, e.after) for e in cleaned.edits] == [
        ("repair.glued_word", "Bolshevikhad", "Bolshevik had"),
        ("repair.glued_word", "ourmovement", "our movement"),
    ]


def test_encoding_repairs_are_recorded_as_edits():
    cleaned = clean("It doesn\u00e2\u20ac\u2122t matter.")
    assert cleaned.clean_text == "It doesn\u2019t matter."
    assert [(e.line_number, e.rule, e.after) for e in cleaned.edits] == [(1, "repair.encoding", "It doesn\u2019t matter.")]
    assert cleaned.repaired_chars == 3


def test_quotations_captions_with_credits_and_spam():
    doc = "\n".join([
        "He made the official attitude clear in a speech in September 1932:",
        "\u201cThis is the theory of a completely ruined fascist.\u201d",
        "Red Guard in Petrograd, 1917. Public domain",
        "Public domain",
        "The post goes on for a while after the picture, as posts do.",
        "1 Comments so far",
        "Any youtube video\u2019s from",
        "Comment by Steapymmeroro",
    ])
    cleaned = clean(doc)
    assert sections(cleaned) == [
        ("body", "He made the official attitude clear in a speech in September 1932:"),
        ("quote", "\u201cThis is the theory of a completely ruined fascist.\u201d"),
        ("caption", "Red Guard in Petrograd, 1917. Public domain"),
        ("body", "The post goes on for a while after the picture, as posts do."),
    ]
    assert removals(cleaned) == [
        (4, "caption.photo_credit"), (6, "comment.thread_header"), (7, "comment.spam"), (8, "comment.spam"),
    ]


def test_lines_repeated_across_the_source_are_chrome():
    doc = "Subscribe to our print edition today\nThe article itself is here."
    cleaned = clean(doc, source_repeats={line_hash("Subscribe  to our PRINT edition today")})
    assert sections(cleaned) == [("body", "The article itself is here.")]
    assert removals(cleaned) == [(1, "repeat.cross_document")]


@pytest.mark.parametrize("text", [p.read_text(encoding="utf-8") for p in sorted(SAMPLE.glob("*.txt"))] + [
    "It doesn\u00e2\u20ac\u2122t matter at all here.\n\x1b[0m\x1b[1m\x1b[0m\x1b[1m\nPlain line long enough.",
])
def test_recorded_line_hashes_equal_the_planners_cheap_ones(text):
    # The planner fingerprints new files with line_hashes(); the warehouse stores clean()'s.
    assert clean(text).line_hashes == line_hashes(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=40)
       | st.text(alphabet=st.sampled_from(list("aB \t\u00a0\u2003\u3000\x0b\x1c\x85\u200bÉé\u0301ß")), max_size=20))
def test_a_normalised_line_hashes_as_its_key(raw_line):
    plain = normalise(raw_line)
    assert normalised_line_hash(plain) == line_hash(plain)
    assert line_key(plain) == plain.casefold()


def test_neither_case_folding_nor_nfc_makes_white_space():
    # What normalised_line_hash relies on, checked over every code point.
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if char.isspace() or 0xD800 <= code <= 0xDFFF:
            continue
        assert not any(c.isspace() for c in char.casefold() + unicodedata.normalize("NFC", char)), hex(code)
