"""Clean: decoded text -> clean text made of classified blocks, plus an audit of every change.

Takes the decoded text of one document, optionally its source's name and the set of lines that
recur across documents of its source; gives `Cleaned`: the clean text, its blocks (section,
offsets, raw line numbers, comment author), removed lines with the rule that removed each,
edits (ftfy repairs, glued-word splits), metadata moved out of the text, and repair counts.

Every non-blank raw line ends in exactly one place: a block of the clean text or a
`RemovedLine`. Patterns are data (rules.toml); this module applies them and holds the
structural decisions (title, headings, quotations, comment threads, repeats).
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass, field

import xxhash

from flows.stages import boilerplate
from flows.stages.records import Block, Cleaned, Edit, RemovedLine
from flows.stages.repair import fix_encoding, normalise, changed_chars, split_glued_words
from flows.stages.rules import line_rules, rules, structure_pattern

# A line that ends like a sentence (optionally inside closing quotes or brackets).
_SENTENCE_END = re.compile(r"[.!?:;,…]['’”\")\]]*$")
_OPENING_QUOTE = ("“", '"', "‘", "«", "„")
_CLOSING_QUOTE = re.compile(r"[”\"’»]$|[”\"’»][.!?)]*$")
_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"], start=1)}


def line_key(text: str) -> str:
    """What makes two lines 'the same line' for repeat detection."""
    return " ".join(text.casefold().split())


def line_hash(text: str) -> int:
    """Signed 64-bit hash of a line's key (fits a BIGINT column)."""
    return _key_hash(line_key(text))


def normalised_line_hash(line: str) -> int:
    """`line_hash` of a line that `normalise` gave: stripped, with single plain spaces, and so
    its own key once case-folded (neither case folding nor NFC makes white space; the split
    and join took most of the fingerprint pass's hashing)."""
    return _key_hash(line.casefold())


def _key_hash(key: str) -> int:
    return int.from_bytes(xxhash.xxh3_64_digest(key.encode("utf-8")), "big", signed=True)


def split_lines(text: str) -> list[str]:
    """Raw lines, numbered from 1 by position; Windows and old-Mac line ends count as one."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


@dataclass
class _Line:
    number: int
    text: str
    section: str = "body"
    rule: str | None = None  # set when the line is removed
    score: float | None = None  # the boilerplate classifier's P(content), when it removed the line
    comment_author: str | None = None
    index_hash: int = 0  # line_hash of the line before ftfy, as in the line_index table


@dataclass
class _Document:
    lines: list[_Line]
    metadata: dict[str, str] = field(default_factory=dict)

    def kept(self) -> list[_Line]:
        return [ln for ln in self.lines if ln.rule is None]

    def take_metadata(self, match: re.Match) -> None:
        for key, value in match.groupdict().items():
            if value and value.strip() and key not in self.metadata:
                self.metadata[key] = value.strip()


def _apply_line_rules(doc: _Document, source_name: str | None) -> None:
    head = rules()["structure"]["head_lines"]
    for position, line in enumerate(doc.lines):
        if source_name and line_key(line.text) == line_key(source_name):
            line.rule = "chrome.site_name"
            continue
        for rule in line_rules():
            if rule.where == "head" and position >= head:
                continue
            match = rule.pattern.search(line.text)
            if not match:
                continue
            if rule.action in ("meta", "annotate"):
                doc.take_metadata(match)
            if rule.action == "caption":
                line.section = "caption"
            elif rule.action != "annotate":
                line.rule = rule.name
            break


def _is_spam(comment: list[_Line]) -> bool:
    spec = rules()["comments"]
    text = " ".join(line.text for line in comment)
    return len(text.split()) <= spec["spam_max_words"] and bool(re.search(spec["spam_pattern"], text))


def _assign_comments(doc: _Document) -> None:
    """WordPress threads: 'Comment by NAME' follows the comment it attributes.

    The thread starts after its header ('N Comments so far' / 'Leave a comment') or, without a
    header, at the paragraph just before the first attribution. Pingbacks and spam are removed.
    """
    attribution = structure_pattern("comment_attribution")
    pingback = structure_pattern("pingback_attribution")
    lines = [ln for ln in doc.lines if ln.rule in (None, "comment.thread_header")]
    first = next((i for i, ln in enumerate(lines) if attribution.match(ln.text)), None)
    if first is None:
        return
    header = max((i for i in range(first) if lines[i].rule == "comment.thread_header"), default=None)
    start = header + 1 if header is not None else max(first - 1, 0)
    pending: list[_Line] = []
    for line in lines[start:]:
        if line.rule is not None:
            continue
        if match := attribution.match(line.text):
            spam = _is_spam(pending)
            line.rule = "comment.spam" if spam else "comment.attribution"
            for comment in pending:
                if spam:
                    comment.rule = "comment.spam"
                else:
                    comment.section, comment.comment_author = "comment", match["author"].strip()
            pending = []
        elif pingback.match(line.text):
            line.rule = "comment.pingback"
            for comment in pending:
                comment.rule = "comment.pingback"
            pending = []
        else:
            pending.append(line)
    for comment in pending:  # text after the last attribution: a comment without a name
        comment.section = "comment"


def _mark_comment_region(doc: _Document, first_line: int) -> None:
    """Lines from `first_line` on are reader comments, as the format said (trafilatura keeps an
    HTML page's comments apart); their authors are unknown, spam is removed."""
    for line in doc.kept():
        if line.number >= first_line and line.section == "body":
            if _is_spam([line]):
                line.rule = "comment.spam"
            else:
                line.section = "comment"


def _mark_repeats(doc: _Document, source_repeats: Set[int]) -> None:
    """Lines that recur across the source's documents are chrome; within a document the first
    copy of a repeated line is kept, and an adjacent repeat marks that first copy a caption."""
    min_chars = rules()["structure"]["repeat_min_chars"]
    seen: dict[str, _Line] = {}
    previous: _Line | None = None
    for line in doc.kept():
        key = line.text.casefold()  # line_key of a normalised line (normalised_line_hash)
        if line.index_hash in source_repeats:
            line.rule = "repeat.cross_document"
            continue
        if len(line.text) >= min_chars and key in seen:
            line.rule = "repeat.duplicate_line"
            if previous is seen[key] and previous.section == "body":
                previous.section = "caption"
            continue
        seen.setdefault(key, line)
        previous = line


def _remove_boilerplate(doc: _Document) -> None:
    """Body lines the boilerplate classifier scores below its threshold are site chrome.
    It reads every non-blank line of the page (its context); comments, captions and lines
    already removed keep their decision. A short document is left alone: the model knows
    pages, and a text of a few lines carries no menus to learn from."""
    spec = rules()["boilerplate"]
    if not spec["enabled"] or len(doc.lines) < spec["min_lines"]:
        return
    short = sum(1 for ln in doc.kept() if ln.section == "body" and len(ln.text.split()) <= boilerplate.SHORT_WORDS)
    if short < spec["min_short_lines"]:
        return  # no menus or link lists left to find: the rules took the page's chrome
    scores = boilerplate.content_probabilities([ln.text for ln in doc.lines])
    if max(scores) < spec["page_min_content"]:
        return  # not a page with an article (a listing, a directory): the model knows articles
    cut = boilerplate.threshold()
    for line, score in zip(doc.lines, scores):
        if line.rule is None and line.section == "body" and score < cut:
            line.rule, line.score = "boilerplate.line", score


def _is_title_like(text: str, max_chars: int) -> bool:
    return len(text) <= max_chars and not _SENTENCE_END.search(text)


def _classify_structure(doc: _Document) -> None:
    """Title, standfirst, headings, list items and quotations among the kept body lines."""
    structure = rules()["structure"]
    bullet = structure_pattern("list_bullet")
    kept = doc.kept()
    head_numbers = {ln.number for ln in doc.lines[: structure["head_lines"]]}
    if kept and kept[0].number in head_numbers and len(kept) > 1 and kept[0].section == "body":
        first, second = kept[0], kept[1]
        if "title" not in doc.metadata and _is_title_like(first.text, structure["title_max_chars"]):
            first.section = "title"
            doc.metadata["title"] = first.text
            if second.section == "body" and _is_title_like(second.text, 2 * structure["title_max_chars"]):
                second.section = "standfirst"
    for i, line in enumerate(kept):
        if line.section != "body":
            continue
        before = kept[i - 1] if i else None
        after = kept[i + 1] if i + 1 < len(kept) else None
        if bullet.match(line.text):
            line.section = "list_item"
        elif line.text.startswith(_OPENING_QUOTE) and (
            _CLOSING_QUOTE.search(line.text) or (before is not None and before.text.endswith(":"))
        ):
            line.section = "quote"
        elif (
            len(line.text.split()) <= structure["heading_max_words"]
            and not _SENTENCE_END.search(line.text)
            and (line.text[0].isupper() or line.text[0].isdigit())
            and after is not None
            and after.section == "body"
            and len(after.text) >= structure["heading_min_following_chars"]
        ):
            line.section = "heading"


def parse_date(value: str) -> str | None:
    """'January 27, 2008' -> '2008-01-27'; None when it is not such a date."""
    match = re.match(r"([A-Za-z]+) (\d{1,2}), (\d{4})", value)
    if not match or match[1].lower() not in _MONTHS:
        return None
    return f"{int(match[3]):04d}-{_MONTHS[match[1].lower()]:02d}-{int(match[2]):02d}"


def _indexed(plain: str, min_chars: int) -> bool:
    """Whether a line (normalised, not repaired) goes into the line index."""
    return len(plain) >= min_chars


def read_lines(text: str) -> tuple[list[_Line], list[Edit], set[int], int, int]:
    """Decoded text -> non-blank repaired lines, ftfy edits, the line index hashes, and
    (repaired, normalised) character counts."""
    lines, edits, hashes = [], [], set()
    repaired_chars = normalised_chars = 0
    min_chars = rules()["structure"]["cross_document_min_chars"]
    for number, raw in enumerate(split_lines(text), start=1):
        repaired = fix_encoding(raw)
        line_text = normalise(repaired)
        plain = line_text if repaired == raw else normalise(raw)  # the index ignores ftfy
        if repaired != raw:
            repaired_chars += changed_chars(raw, repaired)
            edits.append(Edit(number, "repair.encoding", raw, repaired))
        if line_text != repaired:
            normalised_chars += changed_chars(repaired.strip(), line_text)
        plain_hash = normalised_line_hash(plain) if plain else 0
        if _indexed(plain, min_chars):
            hashes.add(plain_hash)
        if line_text:
            lines.append(_Line(number, line_text, index_hash=plain_hash))
    return lines, edits, hashes, repaired_chars, normalised_chars


def line_hashes(text: str) -> set[int]:
    """The line index hashes of a decoded text, cheaply (no ftfy), as `clean` records them:
    what the planner needs before processing, for cross-document repeats."""
    min_chars = rules()["structure"]["cross_document_min_chars"]
    plain_lines = (normalise(raw) for raw in split_lines(text))
    return {normalised_line_hash(plain) for plain in plain_lines if _indexed(plain, min_chars)}


def clean(text: str, source_name: str | None = None, source_repeats: Set[int] = frozenset(),
          comments_from_line: int | None = None) -> Cleaned:
    """Decoded text of one document -> `Cleaned` (see module docstring). `comments_from_line`:
    where the reader comments begin, when the input format says so."""
    lines, edits, hashes, repaired_chars, normalised_chars = read_lines(text)
    doc = _Document(lines)
    _apply_line_rules(doc, source_name)
    _assign_comments(doc)
    if comments_from_line is not None:
        _mark_comment_region(doc, comments_from_line)
    _mark_repeats(doc, source_repeats)
    _remove_boilerplate(doc)
    _classify_structure(doc)

    bullet = structure_pattern("list_bullet")
    pieces: list[str] = []
    blocks: list[Block] = []
    offset = 0
    for line in doc.kept():
        block_text = line.text
        if line.section == "list_item":
            stripped = bullet.sub("", block_text, count=1)
            normalised_chars += len(block_text) - len(stripped)
            block_text = stripped
        block_text, fixes = split_glued_words(block_text)
        edits.extend(Edit(line.number, "repair.glued_word", f.before, f.after) for f in fixes)
        if pieces:
            offset += 2  # the blank line between blocks
        blocks.append(Block(len(blocks), line.section, offset, offset + len(block_text),
                            line.number, line.number, line.comment_author))
        pieces.append(block_text)
        offset += len(block_text)

    metadata = dict(doc.metadata)
    if "published" in metadata and not (iso := parse_date(metadata["published"])):
        del metadata["published"]
    elif "published" in metadata:
        metadata["published"] = iso
    return Cleaned(
        clean_text="\n\n".join(pieces),
        blocks=blocks,
        removed=[RemovedLine(ln.number, ln.number, ln.text, ln.rule, ln.score) for ln in doc.lines if ln.rule],
        edits=sorted(edits, key=lambda e: e.line_number),
        metadata=metadata,
        line_hashes=hashes,
        n_lines=len(split_lines(text)),
        repaired_chars=repaired_chars,
        normalised_chars=normalised_chars,
    )
