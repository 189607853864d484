"""The catalogues as data: cleaning rules (rules.toml) and reject kinds (reject_kinds.toml).

Gives the raw TOML data (`rules()`), the compiled line rules (`line_rules()`), each with a
stable dotted name and a one-line description, as listed by `corpus rules`, and the reject
kinds (`reject_kinds()`), as listed by `corpus rules --rejects`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

RULES_PATH = Path(__file__).with_name("rules.toml")
REJECT_KINDS_PATH = Path(__file__).with_name("reject_kinds.toml")

# Rules that are decided by document structure rather than by one line's pattern. They are
# listed with the pattern rules so that every `removed.rule` value has a description.
STRUCTURAL_RULES = {
    "repeat.duplicate_line": "A line repeated within the document (e.g. a caption printed twice): the first copy is kept",
    "comment.attribution": "WordPress 'Comment by NAME' line: the name moves to comment_author of the comment above it",
    "comment.pingback": "A pingback/trackback (link notice, not a reader's comment) and its attribution line",
    "comment.spam": "A short comment matching [comments] spam_pattern, and its attribution line",
    "repeat.cross_document": "A line found in at least [structure] cross_document_min_docs documents of the same source: site chrome",
    "chrome.site_name": "A line that is just the source's name (blog or site title), as given in the sidecar",
    "boilerplate.line": "A body line the boilerplate classifier (flows/stages/boilerplate.py) scores as site chrome: removed.score, its probability of content, is below the model's threshold",
}


@dataclass(frozen=True)
class LineRule:
    name: str
    description: str
    pattern: re.Pattern
    action: str  # remove | meta | annotate | caption
    where: str  # anywhere | head


# Overrides the language detector of rules.toml for this process and the workers it starts
# (`corpus run/split --lang-detector`); part of the rules, so of the pipeline version.
DETECTOR_ENV = "CORPUS_LANG_DETECTOR"
DETECTORS = ("fasttext", "langdetect")


def use_detector(name: str) -> None:
    """Make `name` the language detector of this process and of the workers it starts."""
    os.environ[DETECTOR_ENV] = name
    rules.cache_clear()


@cache
def rules() -> dict:
    """The rules in force: rules.toml, with [language] detector from $CORPUS_LANG_DETECTOR."""
    loaded = tomllib.loads(RULES_PATH.read_text(encoding="utf-8"))
    chosen = os.environ.get(DETECTOR_ENV) or loaded["language"]["detector"]
    if chosen not in DETECTORS:
        raise ValueError(f"unknown language detector {chosen!r} (one of: {', '.join(DETECTORS)})")
    loaded["language"]["detector"] = chosen
    return loaded


@cache
def line_rules() -> tuple[LineRule, ...]:
    compiled = []
    for spec in rules()["line"]:
        compiled.append(
            LineRule(
                spec["name"],
                spec["description"],
                re.compile(spec["pattern"]),
                spec.get("action", "remove"),
                spec.get("where", "anywhere"),
            )
        )
    return tuple(compiled)


@cache
def structure_pattern(key: str) -> re.Pattern:
    return re.compile(rules()["structure"][key])


def catalogue() -> list[tuple[str, str]]:
    """(name, description) of every rule that can appear in removed.rule, sorted by name."""
    entries = {r.name: r.description for r in line_rules()}
    entries.update(STRUCTURAL_RULES)
    return sorted(entries.items())


@cache
def reject_kinds() -> dict[str, str]:
    """{kind: description} of every value `rejects.error_kind` can take."""
    return dict(tomllib.loads(REJECT_KINDS_PATH.read_text(encoding="utf-8"))["kinds"])
