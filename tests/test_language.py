from contextlib import nullcontext

import pytest

from flows import fastpaths, language, langdetect_fast
from flows.clean import clean
from flows.ingest import decode
from flows.language import NO_LANGUAGE, detect, inherit_or_detect
from flows.records import Lang
from flows.segment import segment
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
    text = (
        PARAGRAPHS["en"] + "\n\n"
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

    def counting(text):
        calls["n"] += 1
        return real(text)

    monkeypatch.setattr(language, "detect", counting)
    text = _sample_texts()[3]
    labels(text, fast=False)
    slow, calls["n"] = calls["n"], 0
    labels(text, fast=True)
    assert calls["n"] * 10 < slow


def test_langdetect_profiles_are_loaded_once_in_sorted_order():
    # langdetect's own lazy loading raced between shard threads and gave different
    # probabilities (found by comparing a 1-worker and a 2-worker build of the BBC corpus).
    from langdetect import detector_factory

    language.load_langdetect_profiles()
    langlist = detector_factory._factory.langlist
    assert langdetect_fast.detector().langlist == langlist
    assert langlist == sorted(langlist) and len(langlist) == 55


def _languages(result) -> list[tuple[str, float]]:
    return [(language.lang, language.prob) for language in result]


@pytest.mark.parametrize("text", _sample_texts() + list(PARAGRAPHS.values()) + [
    "ĐÂY LÀ TIẾNG VIỆT có dấu", "日本語のテキストです。カタカナ", "HELLO WORLD THIS IS CAPS",
    "see https://example.org/x?y=1 or mail a.b@example.org now", "x", "Ελληνικά και English mixed",
])
def test_langdetect_fast_gives_langdetects_probabilities_bit_for_bit(text):
    from langdetect import detect_langs

    language.load_langdetect_profiles()
    assert _languages(langdetect_fast.detect_langs(text)) == _languages(detect_langs(text))


def test_langdetect_fast_raises_like_langdetect_on_text_without_features():
    from langdetect.lang_detect_exception import LangDetectException

    with pytest.raises(LangDetectException):
        langdetect_fast.detect_langs("1234 !!! 5678")


def test_margin_is_positive_for_the_right_language_and_negative_for_another():
    assert langdetect_fast.mean_log_margin(PARAGRAPHS["de"], "de") > 0.1
    assert langdetect_fast.mean_log_margin(PARAGRAPHS["de"], "en") < 0
    assert langdetect_fast.mean_log_margin("123", "en") == float("-inf")
