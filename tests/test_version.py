"""The pipeline version changes with code and rules that shape rows, and with nothing else."""

import shutil

from flows.stages.version import STAGES, code_digest, pipeline_version, version_of


def stage_copy(tmp_path):
    copy = tmp_path / "stages"
    shutil.copytree(STAGES, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_installed_version_is_that_of_the_stage_package():
    assert pipeline_version() == version_of(STAGES)
    assert len(pipeline_version()) == 16


def test_comments_docstrings_and_layout_change_nothing(tmp_path):
    copy = stage_copy(tmp_path)
    for module in copy.glob("*.py"):
        text = module.read_text()
        text = text.replace('"""', '"""Edited. ', 1)  # the module docstring
        module.write_text(text + "\n# A comment appended to every module.\n\n\n")
    rules = copy / "rules.toml"
    rules.write_text("# A comment on the rules.\n" + rules.read_text())
    assert version_of(copy) == version_of(STAGES)


def test_a_change_of_code_or_of_a_rule_changes_it(tmp_path):
    copy = stage_copy(tmp_path)
    segment = copy / "segment.py"
    segment.write_text(segment.read_text() + "\nEXTRA = 1\n")
    assert version_of(copy) != version_of(STAGES)
    copy = stage_copy(tmp_path / "second")
    rules = copy / "rules.toml"
    rules.write_text(rules.read_text().replace("cross_document_min_docs = 3", "cross_document_min_docs = 4"))
    assert rules.read_text() != (STAGES / "rules.toml").read_text()
    assert version_of(copy) != version_of(STAGES)


def test_code_digest_ignores_docstrings_but_not_strings():
    plain = "def f():\n    return 'x'\n"
    assert code_digest('"""Module."""\n' + plain.replace("():\n", "():\n    \"\"\"Doc.\"\"\"\n")) == code_digest(plain)
    assert code_digest(plain.replace("'x'", "'y'")) != code_digest(plain)
