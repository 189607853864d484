"""Clean: decoded text -> clean text made of classified blocks, plus an audit of every removal.

Takes the decoded text of one document (and optionally its source's name); gives `Cleaned`:
the clean text, its blocks (section, offsets, raw line numbers, comment author), the removed
lines with the rule that removed each, metadata moved out of the text, and repair counts.

Every raw line ends in exactly one place: a block of the clean text, a `RemovedLine`, or
nowhere only if it is blank. Rules are data (flows/rules.toml); this module applies them and
holds the structural decisions (title, headings, comment threads, repeats).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field

import ftfy

from .records import Block, Cleaned, RemovedLine
from .rules import line_rules, rules, structure_pattern

# Encoding repair only: legitimate typography (curly quotes, ligatures, full-width forms) stays.
_FTFY_CONFIG = ftfy.TextFixerConfig(
    uncurl_quotes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    fix_line_breaks=False,
    remove_control_chars=False,  # done (and counted) by our own normalisation below
    normalization="NFC",
    explain=False,
)
# Space-like characters that become a plain space; invisible ones that are dropped.
_ODD_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\t\u2028\u2029\u0085\x0b\x0c]")
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")  # ZWJ/ZWNJ kept: emoji and scripts need them
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_MULTI_SPACE = re.compile(" {2,}")
_SENTENCE_END = re.compile(r"[.!?:;,…]['’”\")\]]*$")
_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"], start=1)}


def _changed_chars(before: str, after: str) -> int:
    if before == after:
        return 0
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    same = sum(block.size for block in matcher.get_matching_blocks())
    return max(len(before), len(after)) - same


def _needs_ftfy(line: str) -> bool:
    # Pure ASCII without entities or escapes is something ftfy can never change.
    return not (line.isascii() and "&" not in line and "\x1b" not in line)


def normalise_line(line: str) -> tuple[str, int, int]:
    """One raw line -> (normalised text, chars changed by ftfy, chars changed by normalisation)."""
    repaired = ftfy.fix_text(line, _FTFY_CONFIG) if _needs_ftfy(line) else line
    text = _INVISIBLE.sub("", repaired)
    text = _CONTROL.sub("", text)
    text = _ODD_SPACES.sub(" ", text)
    text = _MULTI_SPACE.sub(" ", text).strip()
    text = unicodedata.normalize("NFC", text)
    normalised = _changed_chars(repaired.strip(), text) if text != repaired else 0
    return text, _changed_chars(line, repaired), normalised


def split_lines(text: str) -> list[str]:
    """Raw lines, numbered from 1 by position; Windows and old-Mac line ends count as one."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


@dataclass
class _Line:
    number: int
    text: str
    section: str = "body"
    rule: str | None = None  # set when removed
    comment_author: str | None = None


@dataclass
class _State:
    metadata: dict[str, str] = field(default_factory=dict)


def _apply_line_rules(lines: list[_Line], state: _State, source_name: str | None) -> None:
    head = rules()["structure"]["head_lines"]
    attribution = structure_pattern("comment_attribution")
    in_comments = False
    for position, line in enumerate(lines):
        in_comments = in_comments or bool(attribution.match(line.text))
        if source_name and line.text.casefold() == source_name.casefold():
            line.rule = "chrome.site_name"
            continue
        for rule in line_rules():
            if rule.where == "head" and position >= head:
                continue
            if rule.where == "comments" and not in_comments:
                continue
            match = rule.pattern.search(line.text)
            if not match:
                continue
            line.rule = rule.name
            if rule.action == "meta":
                for key, value in match.groupdict().items():
                    if value and value.strip() and key not in state.metadata:
                        state.metadata[key] = value.strip()
            break


def _assign_comments(lines: list[_Line]) -> None:
    """WordPress threads: 'Comment by NAME' follows the comment it attributes.

    The thread starts after its header ('N Comments so far' / 'Leave a comment') or, without a
    header, at the paragraph just before the first attribution. Lines of a pingback are removed.
    """
    attribution = structure_pattern("comment_attribution")
    pingback = structure_pattern("pingback_attribution")
    kept = [ln for ln in lines if ln.rule is None or ln.rule == "comment.thread_header"]
    first = next((i for i, ln in enumerate(kept) if attribution.match(ln.text)), None)
    if first is None:
        return
    header = max((i for i in range(first) if kept[i].rule == "comment.thread_header"), default=None)
    start = header + 1 if header is not None else max(first - 1, 0)
    pending: list[_Line] = []
    for line in kept[start:]:
        if line.rule is not None:
            continue
        if match := attribution.match(line.text):
            line.rule = "comment.attribution"
            for comment in pending:
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


def _mark_repeats(lines: list[_Line]) -> None:
    """Keep the first copy of a repeated line; an adjacent repeat marks the first as a caption."""
    min_chars = rules()["structure"]["repeat_min_chars"]
    seen: dict[str, _Line] = {}
    previous: _Line | None = None
    for line in lines:
        if line.rule is not None:
            continue
        key = line.text.casefold()
        if len(line.text) >= min_chars and key in seen:
            line.rule = "repeat.duplicate_line"
            if previous is seen[key] and previous.section == "body":
                previous.section = "caption"
            continue
        seen.setdefault(key, line)
        previous = line


def _classify_structure(lines: list[_Line], state: _State) -> None:
    """Title, standfirst, headings and list items among the kept lines."""
    structure = rules()["structure"]
    bullet = structure_pattern("list_bullet")
    kept = [ln for ln in lines if ln.rule is None]
    head = [ln for ln in lines[: structure["head_lines"]] if ln.rule is None]
    if "title" not in state.metadata and head:
        first = head[0]
        if (
            first is kept[0]
            and first.section == "body"
            and len(first.text) <= structure["title_max_chars"]
            and not _SENTENCE_END.search(first.text)
            and len(kept) > 1
        ):
            first.section = "title"
            state.metadata["title"] = first.text
            second = kept[1]
            if (
                second.section == "body"
                and len(second.text) <= 2 * structure["title_max_chars"]
                and not re.search(r"[.!?]$", second.text)
            ):
                second.section = "standfirst"
    for i, line in enumerate(kept):
        if line.section != "body":
            continue
        if bullet.match(line.text):
            line.section = "list_item"
            continue
        following = kept[i + 1] if i + 1 < len(kept) else None
        if (
            len(line.text.split()) <= structure["heading_max_words"]
            and not _SENTENCE_END.search(line.text)
            and (line.text[0].isupper() or line.text[0].isdigit())
            and following is not None
            and following.section == "body"
            and len(following.text) >= structure["heading_min_following_chars"]
        ):
            line.section = "heading"


def parse_date(value: str) -> str | None:
    """'January 27, 2008' -> '2008-01-27'; None when it is not such a date."""
    match = re.match(r"([A-Za-z]+) (\d{1,2}), (\d{4})", value)
    if not match or match[1].lower() not in _MONTHS:
        return None
    return f"{int(match[3]):04d}-{_MONTHS[match[1].lower()]:02d}-{int(match[2]):02d}"


def clean(text: str, source_name: str | None = None) -> Cleaned:
    """Decoded text of one document -> `Cleaned` (see module docstring)."""
    raw_lines = split_lines(text)
    lines: list[_Line] = []
    repaired = normalised = 0
    for number, raw in enumerate(raw_lines, start=1):
        line_text, n_repaired, n_normalised = normalise_line(raw)
        repaired += n_repaired
        normalised += n_normalised
        if line_text:
            lines.append(_Line(number, line_text))

    state = _State()
    _apply_line_rules(lines, state, source_name)
    _assign_comments(lines)
    _mark_repeats(lines)
    _classify_structure(lines, state)

    bullet = structure_pattern("list_bullet")
    pieces: list[str] = []
    blocks: list[Block] = []
    removed: list[RemovedLine] = []
    offset = 0
    for line in lines:
        if line.rule is not None:
            removed.append(RemovedLine(line.number, line.number, line.text, line.rule))
            continue
        block_text = line.text
        if line.section == "list_item":
            stripped = bullet.sub("", block_text, count=1)
            normalised += len(block_text) - len(stripped)
            block_text = stripped
        if pieces:
            offset += 2  # the blank line between blocks
        blocks.append(
            Block(len(blocks), line.section, offset, offset + len(block_text),
                  line.number, line.number, line.comment_author)
        )
        pieces.append(block_text)
        offset += len(block_text)

    metadata = dict(state.metadata)
    if "published" in metadata:
        iso = parse_date(metadata["published"])
        if iso:
            metadata["published"] = iso
        else:
            del metadata["published"]
    return Cleaned(
        clean_text="\n\n".join(pieces),
        blocks=blocks,
        removed=removed,
        metadata=metadata,
        n_lines=len(raw_lines),
        repaired_chars=repaired,
        normalised_chars=normalised,
    )
