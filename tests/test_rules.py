"""The catalogues as data: reject kinds agree with the rejects contract, and nothing else passes."""

import json

import pytest

from flows import schemas
from flows.stages.records import Reject
from flows.stages.rules import reject_kinds
from tests.conftest import corpus


def test_the_reject_kinds_are_the_values_the_rejects_contract_allows():
    (error_kind,) = [c for c in schemas.table("rejects").columns if c.name == "error_kind"]
    assert set(error_kind.values) == set(reject_kinds())
    assert "empty" in reject_kinds() and all(reject_kinds().values())


def test_a_reject_of_an_unknown_kind_is_a_bug_caught_where_it_is_made():
    assert Reject("a.txt", "empty", "a.txt: file is empty (0 bytes)").error_kind == "empty"
    with pytest.raises(ValueError, match="unknown reject kind 'emtpy'"):
        Reject("a.txt", "emtpy", "a.txt: file is empty (0 bytes)")


def test_the_rejects_contract_refuses_a_kind_outside_the_catalogue():
    row = {"raw_path": "a.txt", "raw_record": None, "raw_sha256": None, "raw_bytes": None,
           "error_kind": "mystery", "message": "a.txt: ?", "pipeline_version": "0"}
    with pytest.raises(schemas.SchemaError, match=r"rejects.error_kind: values not in the contract: \['mystery'\]"):
        schemas.table("rejects").to_arrow([row])


def test_corpus_rules_lists_the_reject_kinds():
    listed = json.loads(corpus("rules", "--rejects", "--format", "json"))
    assert [k["kind"] for k in listed] == sorted(reject_kinds())
    assert {"kind": "empty", "description": "0 bytes, or only whitespace"} in listed


def test_corpus_rules_lists_the_boilerplate_classifier():
    listed = {r["rule"]: r["description"] for r in json.loads(corpus("rules", "--format", "json"))}
    assert listed["boilerplate.line"].startswith("A body line the boilerplate classifier")
