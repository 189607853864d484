import json
import os
import subprocess
import sys
from contextlib import nullcontext

import pytest

from flows.stages import fastpaths
from flows.stages import language
from flows.stages.clean import clean
from flows.stages.decode import decode
from flows.stages.language import NO_LANGUAGE, detect, inherit_or_detect
from flows.stages.records import Lang
from flows.stages.segment import segment
from tests.conftest import SAMPLE

PARAGRAPHS = {
    "de": ("Die Stadt liegt am Ufer des Flusses und hat eine lange Geschichte, die bis in das "
           "Mittelalter zurückreicht. Viele Menschen besuchen sie jedes Jahr, um die alten Kirchen "
           "und die schmalen Gassen der Altstadt zu sehen."),
    "fr": ("La ville se trouve au bord du fleuve et possède une longue histoire qui remonte au "
           "Moyen Âge. Beaucoup de gens la visitent chaque année pour voir les vieilles églises "
           "et les ruelles étroites de la vieille ville."),
    "es": ("La ciudad está a orillas del río y tiene una larga historia que se remonta a la Edad "
           "Media. Mucha gente la visita cada año para ver las viejas iglesias y las calles "
           "estrechas del casco antiguo."),
    "ru": ("Город стоит на берегу реки и имеет долгую историю, которая восходит к Средним векам. "
           "Каждый год его посещают многие люди, чтобы увидеть старые церкви и узкие улицы "
           "старого города."),
    "en": ("The city lies on the bank of the river and has a long history that goes back to the "
           "Middle Ages. Many people visit it every year to see the old churches and the narrow "
           "streets of the old town."),
}


def labels(text: str, fast: bool = True) -> tuple[Lang, list[tuple[str, str | None]]]:
    with nullcontext() if fast else fastpaths.disabled():
        cleaned = clean(text)
        spans = segment(cleaned.clean_text, cleaned.blocks)
        doc, langs = language.assign(cleaned.clean_text, cleaned.blocks, spans)
    return doc, [(cleaned.clean_text[s.char_start : s.char_end], lang.code) for s, lang in zip(spans, langs)]


@pytest.mark.parametrize("code", ["de", "fr", "es", "ru", "en"])
def test_a_document_in_one_language(code):
    text = PARAGRAPHS[code] + "\n\n" + PARAGRAPHS[code].replace(".", "!", 1)
    doc, sentences = labels(text)
    assert doc.code == code
    assert {lang for _, lang in sentences} == {code}


def test_an_english_document_quoting_german_and_french():
    german_quote = "„Wir müssen die Arbeiter in allen Ländern vereinigen, sonst ist alles verloren“, schrieb er."
    # English holds most of the letters: the document is English whatever the order.
    text = (
        PARAGRAPHS["en"] + "\n\n" + PARAGRAPHS["en"].replace("city", "village") + "\n\n"
        "In his letter he wrote the following words in German. " + german_quote + "\n\n"
        + PARAGRAPHS["fr"] + "\n\n"
        "Short quote: « Oui. » It stays English."
    )
    doc, sentences = labels(text)
    assert doc.code == "en"
    by_text = dict(sentences)
    assert by_text[german_quote] == "de"
    assert by_text["In his letter he wrote the following words in German."] == "en"
    french = [lang for sentence, lang in sentences if sentence in PARAGRAPHS["fr"]]
    assert french and set(french) == {"fr"}
    last_block = [lang for sentence, lang in sentences if sentence in "Short quote: « Oui. » It stays English."]
    assert last_block and set(last_block) == {"en"}  # too short to trust: inherited


def test_text_without_letters_has_no_language():
    assert detect("1917 — 1924 (…) 42%") == NO_LANGUAGE
    assert inherit_or_detect("12.5%", Lang("en", 0.99), 60, 0.95) == NO_LANGUAGE


def test_short_text_inherits_its_parent():
    english = Lang("en", 0.999)
    assert inherit_or_detect("Merci beaucoup.", english, 60, 0.95) == english


def test_detection_is_seeded_and_repeatable():
    assert [detect(PARAGRAPHS["fr"]) for _ in range(3)] == [detect(PARAGRAPHS["fr"])] * 3


def _sample_texts() -> list[str]:
    return [decode(p.read_bytes(), p.name)[0] for p in sorted(SAMPLE.glob("*.txt"))]


@pytest.mark.parametrize("text", _sample_texts() + ["\n\n".join(PARAGRAPHS.values())],
                         ids=["000", "001", "002", "003", "004", "mixed"])
def test_fast_path_gives_the_same_labels_as_detecting_everywhere(text):
    assert labels(text, fast=True) == labels(text, fast=False)


def test_fast_path_saves_detector_calls(monkeypatch):
    calls = {"n": 0}
    real = language.detect

    def counting(text, max_chars=0):
        calls["n"] += 1
        return real(text, max_chars)

    monkeypatch.setattr(language, "detect", counting)
    text = _sample_texts()[3]
    labels(text, fast=False)
    slow, calls["n"] = calls["n"], 0
    labels(text, fast=True)
    # Every block of 40+ letters is detected either way (the document's language is voted by
    # blocks); the fast path saves the sentence-level calls.
    assert calls["n"] * 2 < slow


def test_the_model_ships_with_the_package_and_needs_no_download():
    assert language.model_path().is_file()
    assert language.model_path().stat().st_size < 2_000_000  # the compressed lid.176.ftz


def test_probabilities_are_rounded_and_at_most_one():
    for text in PARAGRAPHS.values():
        found = detect(text)
        assert 0.5 < found.prob <= 1.0 and found.prob == round(found.prob, 6)


def test_line_breaks_do_not_reach_the_model():
    # fastText reads one line at a time and refuses a newline inside a text.
    assert detect(PARAGRAPHS["de"].replace(" ", "\n")).code == "de"
    assert detect("Die Stadt liegt am Ufer des Flusses\u2028und hat eine lange Geschichte.").code == "de"


def test_only_the_first_max_chars_are_read(monkeypatch):
    from flows.stages import rules as rules_module

    text = PARAGRAPHS["fr"] * 3 + PARAGRAPHS["en"] * 20
    assert detect(text).code == "en"
    settings = {**rules_module.rules(), "language": {**rules_module.rules()["language"], "max_chars": 300}}
    monkeypatch.setattr(language, "rules", lambda: settings)
    assert detect(text).code == "fr"


def _corpus_process(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A `corpus` command in a process of its own: the detector choice is per process."""
    return subprocess.run([sys.executable, "-m", "flows", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


GERMAN = ("Das Wetter ist heute schön, und wir gehen nach dem Frühstück mit den Kindern an den Strand, "
          "weil es endlich warm genug ist.")


def test_split_with_langdetect_is_seeded_and_gives_the_same_output_twice(tmp_path):
    text = tmp_path / "de.txt"
    text.write_text(GERMAN)
    first, second = (_corpus_process("split", "--no-clean", "--lang-detector", "langdetect", str(text)) for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    (sentence,) = [json.loads(line) for line in first.stdout.splitlines()]
    assert sentence["lang"] == "de" and 0.9 <= sentence["lang_prob"] <= 1.0


def test_run_with_langdetect_is_deterministic_recorded_and_reprocessed_by_a_change(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "de.txt").write_text(GERMAN)
    (raw / "en.txt").write_text("The weather is fine today, and after breakfast we are taking the children "
                                "down to the beach because it is finally warm enough.")
    dumps = []
    for name in ("a", "b"):
        wh = str(tmp_path / name)
        assert _corpus_process("run", str(raw), "--warehouse", wh, "--lang-detector", "langdetect").returncode == 0
        dumps.append(_corpus_process("sql", "--warehouse", wh, "--format", "csv",
                                     "SELECT sentence_id, lang, lang_prob, text FROM sentences ORDER BY ALL").stdout)
    assert dumps[0] == dumps[1] and ",de," in dumps[0] and ",en," in dumps[0]
    wh = str(tmp_path / "a")
    assert _corpus_process("run", str(raw), "--warehouse", wh).returncode == 0  # the default: fastText
    runs = _corpus_process("sql", "--warehouse", wh, "--format", "csv",
                           "SELECT lang_detector, n_changed FROM runs ORDER BY snapshot_id").stdout
    assert runs == "lang_detector,n_changed\nlangdetect,0\nfasttext,2\n"
    assert _corpus_process("release", "1.0.0", "--warehouse", wh).returncode == 0
    card = (tmp_path / "a" / "releases" / "1.0.0" / "README.md").read_text()
    assert "languages by fastText (lid.176) and langdetect (seeded)" in card


def test_a_block_langdetect_cannot_read_inherits_the_document_language(monkeypatch):
    from flows.stages import rules as stage_rules
    from flows.stages.document import split_text

    monkeypatch.setenv(stage_rules.DETECTOR_ENV, "langdetect")
    stage_rules.rules.cache_clear()
    try:  # langdetect strips URLs, then finds no features: a block of 40+ letters it cannot read
        found = split_text(f"{GERMAN}\nhttp://www.example.com/a-long-path/with-many-letters/in-it/index.html",
                           clean_first=False)
    finally:
        monkeypatch.delenv(stage_rules.DETECTOR_ENV)
        stage_rules.rules.cache_clear()
    assert [s["lang"] for s in found] == ["de", "de"]


def test_a_short_uncertain_text_is_settled_by_how_common_its_words_are():
    """fastText alone calls "Take care." Italian; its words are common English ones."""
    from flows.stages import language

    labels, probs = language._model().predict("Take care.", k=1)
    assert labels[0] == "__label__it" and probs[0] < 0.9
    assert language.detect("Take care.") == Lang("en", 0.131938)  # fastText's probability of English
    assert language.detect("We hope you do!").code == "en"  # fastText alone: Italian


def test_a_long_uncertain_text_is_left_to_fasttext():
    from flows.stages import language

    text = "Take care " * 6  # twelve words: over rerank_max_words
    (label,), _ = language._model().predict(text.strip(), k=1)
    assert language.detect(text).code == label.removeprefix("__label__")
