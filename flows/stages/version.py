"""The pipeline version: what decides a document's rows, as one short hash.

Takes the stage package's Python source and its rules file; gives a 16-hex-digit hash that
changes when, and only when, code or rules that shape rows change. Code is hashed as its syntax
tree without docstrings, so comments, docstrings and formatting change nothing; everything
that shapes rows lives in this package, and nothing else is hashed.
"""

from __future__ import annotations

import ast
import hashlib
import json
import tomllib
from functools import cache
from pathlib import Path

from flows.stages.rules import rules

STAGES = Path(__file__).parent


class _DropDocstrings(ast.NodeTransformer):
    def _body(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _body


def code_digest(source: str) -> str:
    """The syntax tree of `source` without docstrings, as text: comments and layout leave no trace."""
    return ast.dump(_DropDocstrings().visit(ast.parse(source)), include_attributes=False)


def version_of(folder: Path, rules: dict | None = None) -> str:
    """The pipeline version of a stage package in `folder`: its *.py files, and the rules in
    force (`rules`, default: the values of its rules.toml)."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + code_digest(path.read_text(encoding="utf-8")).encode() + b"\0")
    for path in sorted(folder.glob("*_model.json")):  # the classifiers' trees shape rows as code does
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    if rules is None:
        rules = tomllib.loads((folder / "rules.toml").read_text(encoding="utf-8"))  # values, not comments
    digest.update(json.dumps(rules, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def pipeline_version() -> str:
    """The pipeline version of the installed stages and the rules in force, the language
    detector included."""
    return _version_with(rules()["language"]["detector"])


@cache
def _version_with(detector: str) -> str:
    """Computed once per detector: the detector is the one rule that changes in a process."""
    return version_of(STAGES, rules())
