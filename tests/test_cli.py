import json

from click.testing import CliRunner

from flows.interface.cli import main, render_table


def split(args, stdin):
    result = CliRunner().invoke(main, ["split", *args], input=stdin)
    return result.exit_code, result.output


def test_split_prints_one_json_object_per_sentence_with_exact_offsets():
    text = "Downloading PDF. Please wait...\n\nIt began on Oct. 7 in Kiel. Then it spread to Berlin.\n"
    code, output = split([], text)
    assert code == 0
    rows = [json.loads(line) for line in output.splitlines()]
    assert [(r["start"], r["end"], r["section"], r["text"]) for r in rows] == [
        (0, 27, "body", "It began on Oct. 7 in Kiel."),
        (28, 53, "body", "Then it spread to Berlin."),
    ]
    assert {r["lang"] for r in rows} == {"en"}


def test_split_no_clean_keeps_every_line_and_offsets_into_the_input():
    text = "Downloading PDF. Please wait...\r\nSecond line here."
    code, output = split(["--no-clean"], text)
    rows = [json.loads(line) for line in output.splitlines()]
    assert code == 0
    for row in rows:
        assert text[row["start"] : row["end"]] == row["text"]
    assert [r["text"] for r in rows] == ["Downloading PDF.", "Please wait...", "Second line here."]


def test_split_jsonl_reads_many_texts_in_one_process():
    stdin = '{"id": 1, "text": "A first. A second."}\n\n{"id": "b", "text": "Only one"}\n'
    code, output = split(["--jsonl"], stdin)
    assert code == 0
    rows = [json.loads(line) for line in output.splitlines()]
    assert [(r["id"], [s["text"] for s in r["sentences"]]) for r in rows] == [
        (1, ["A first.", "A second."]), ("b", ["Only one"]),
    ]


def test_split_jsonl_bad_line_names_the_line():
    code, output = split(["--jsonl"], '{"id": 1, "text": "Fine."}\n[1, 2]\n')
    assert code == 1
    assert "corpus: error: <stdin>: line 2: expected a JSON object with a string 'text'" in output


def test_rules_lists_every_rule_with_a_description():
    result = CliRunner().invoke(main, ["rules", "--format", "json"])
    rules = json.loads(result.output)
    names = [r["rule"] for r in rules]
    assert "chrome.newsletter_signup" in names and "repeat.cross_document" in names
    assert names == sorted(names) and all(r["description"] for r in rules)


def test_render_table_aligns_and_marks_nulls():
    assert render_table(["a", "bb"], [(1, None), (22, "x")]) == "a   bb\n--  ----\n1   NULL\n22  x\n(2 rows)"
