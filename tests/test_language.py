from flows.language import NO_LANGUAGE, block_language, detect, sentence_language
from flows.records import Lang

GERMAN = ("Die Stadt liegt am Ufer des Flusses und hat eine lange Geschichte, die bis in das "
          "Mittelalter zurückreicht. Viele Menschen besuchen sie jedes Jahr.")
FRENCH = ("La ville se trouve au bord du fleuve et possède une longue histoire qui remonte au "
          "Moyen Âge. Beaucoup de gens la visitent chaque année.")
ENGLISH = ("The city lies on the bank of the river and has a long history that goes back to the "
           "Middle Ages. Many people visit it every year.")


def test_detect_is_deterministic_and_right_on_paragraphs():
    assert detect(GERMAN).code == "de"
    assert detect(FRENCH).code == "fr"
    assert detect(ENGLISH).code == "en"
    assert [detect(FRENCH) for _ in range(3)] == [detect(FRENCH)] * 3


def test_text_without_letters_has_no_language():
    assert detect("1917 — 1924 (…) 42%") == NO_LANGUAGE
    assert sentence_language("12.5%", Lang("en", 0.99)) == NO_LANGUAGE


def test_short_text_inherits():
    english = Lang("en", 0.999)
    assert block_language("Ja, genau.", english) == english
    assert sentence_language("Merci beaucoup.", english) == english


def test_long_confidently_different_sentence_keeps_its_own_language():
    english = Lang("en", 0.999)
    assert sentence_language(GERMAN, english).code == "de"
    assert sentence_language(ENGLISH, english) == english
