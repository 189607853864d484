"""The boilerplate classifier: a menu run goes, a short paragraph between good ones stays."""

from flows.stages import boilerplate
from flows.stages.clean import clean

MENU = ["Home", "News", "Sport", "Weather", "Business", "Opinion", "Contact us"]
FOOTER = ["Share this article", "Facebook", "Twitter", "Email", "Most read", "Privacy policy", "Terms of use",
          "Cookie settings", "About us", "Advertise with us"]
PARAGRAPHS = [
    "The river rose by two metres overnight, and the town's older residents said they had not seen the "
    "water this high since the spring of 1998.",
    "Engineers from the county council spent the morning checking the flood walls along the east bank, "
    "where the water reached the top of the sandbags shortly after dawn.",
    "It kept raining.",
    "By noon the bridge was closed to traffic, and the school on the far side of the river sent its pupils "
    "home early, with buses taking the long way round through the hills.",
    "The forecast for the weekend is no better, and the council has asked residents near the river to move "
    "valuables upstairs and to keep an eye on its website for updates.",
]
PAGE = ["Flood waters rise in the valley - The Valley Courier", *MENU, "Flood waters rise in the valley",
        "By Ann Example", *PARAGRAPHS, *FOOTER]


def test_a_menu_run_and_a_footer_are_removed_and_the_article_kept():
    cleaned = clean("\n".join(PAGE))
    blocks = [(b.section, cleaned.clean_text[b.char_start:b.char_end]) for b in cleaned.blocks]
    # "It kept raining." stays between two good paragraphs; the menu's last item, next to the
    # headline, scores just above the threshold and stays too (a known miss at a run's edge).
    assert blocks == [("title", PAGE[0]), ("standfirst", "Contact us"), ("body", "Flood waters rise in the valley"),
                      ("heading", "By Ann Example"), *(("body", p) for p in PARAGRAPHS)]
    by_rule = {r.text: r.rule for r in cleaned.removed}
    assert [by_rule[line] for line in MENU[1:-1] + FOOTER[1:]] == ["boilerplate.line"] * (len(MENU) + len(FOOTER) - 3)
    assert by_rule["Home"] == by_rule["Share this article"] == "chrome.navigation"  # the rules come first
    cut = boilerplate.threshold()
    assert all(0 <= r.score < cut for r in cleaned.removed if r.rule == "boilerplate.line")
    assert all(r.score is None for r in cleaned.removed if r.rule != "boilerplate.line")


def test_the_short_paragraph_scores_as_content_and_the_menu_items_do_not():
    scores = dict(zip(PAGE, boilerplate.content_probabilities(PAGE)))
    assert scores["It kept raining."] >= boilerplate.threshold()
    assert max(scores[item] for item in MENU[:-1]) < boilerplate.threshold() <= scores["Contact us"]
    assert boilerplate.content_probabilities(PAGE) == boilerplate.content_probabilities(list(PAGE))


def test_a_short_document_is_not_classified():
    text = "\n".join(["Home", "News", *PARAGRAPHS[:2]])
    assert [r.rule for r in clean(text).removed] == ["chrome.navigation"]


def test_prose_is_kept_whatever_its_score():
    # A page of nothing but menu lines and one long sentence at the very end, where pages keep
    # their footers: the sentence stays.
    sentence = ("Residents who were moved out of their homes on Tuesday night were allowed to return on "
                "Thursday morning, the council said.")
    page = [*MENU, *FOOTER, *MENU, sentence]
    cleaned = clean("\n".join(page))
    assert cleaned.clean_text.endswith(sentence)
    assert sentence not in {r.text for r in cleaned.removed}
