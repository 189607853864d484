"""Which language detector, measured: accuracy and cost of langdetect and fastText (lid.176)
on labelled texts, and of the pipeline's own document labels.

Usage: python benchmarks/language_eval.py [--corpora ../shared/corpora] [--langid-only]

First, langid_dev: 8,163 single UD dev sentences in 10 languages, labelled as
`corpus split --no-clean` labels them with each `--lang-detector`, accuracy per language.

Labelled texts: the chardet and charset-normalizer test files whose folder or file name gives
the language (Russian, Japanese, Korean, Chinese, Bulgarian, Hebrew, Hungarian, Greek, ...;
tags stripped), and every 20th BBC article (English). Sentences: lines cut at sentence
punctuation with 60+ letters (the pipeline's sentence_min_letters), 3,000 drawn with a fixed
seed. The labels are the files' and carry some noise (an English line in a Hebrew feed counts
as an error for every detector alike).
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.stages import language  # noqa: E402
from flows.stages.clean import clean  # noqa: E402

LANGUAGE_OF = {
    "croatian": "hr", "czech": "cs", "hungarian": "hu", "polish": "pl", "slovak": "sk", "slovene": "sl",
    "bulgarian": "bg", "russian": "ru", "arabic": "ar", "greek": "el", "turkish": "tr", "hebrew": "he",
    "romanian": "ro", "french": "fr", "english": "en", "spanish": "es", "chinese": "zh", "korean": "ko",
    "IBM855": "ru", "IBM866": "ru", "KOI8-R": "ru", "MacCyrillic": "ru", "EUC-JP": "ja", "SHIFT_JIS": "ja",
    "CP932": "ja", "iso-2022-jp": "ja", "EUC-KR": "ko", "CP949": "ko", "iso-2022-kr": "ko", "TIS-620": "th",
    "GB2312": "zh", "Big5": "zh",
}
SAME = {"zh-cn": "zh", "zh-tw": "zh", "iw": "he"}  # langdetect's codes for fastText's
SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]?")


def strip_tags(text: str) -> str:
    text = re.sub(r"(?s)<(script|style).*?</\1>", " ", text)
    return re.sub(r"[ \t]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))


def labelled_documents(corpora: Path) -> list[tuple[str, str]]:
    docs = []
    chardet = corpora / "encoding_mojibake" / "chardet_tests"
    for rel, info in sorted(json.loads((chardet / "encodings.json").read_text()).items()):
        folder = rel.split("/")[0]
        code = LANGUAGE_OF.get(folder.rsplit("-", 1)[-1]) or LANGUAGE_OF.get(folder)
        if code:
            try:
                docs.append((code, strip_tags((chardet / rel).read_bytes().decode(info["encoding"]))))
            except (UnicodeDecodeError, LookupError):
                pass
    normaliser = corpora / "encoding_mojibake" / "charset_normalizer_data"
    encodings = json.loads((normaliser / "encodings.json").read_text())
    for path in sorted(normaliser.glob("sample-*.txt")):
        code = LANGUAGE_OF.get(path.stem.split("-")[1].split(".")[0])
        encoding = encodings.get(path.name, {}).get("encoding") if isinstance(encodings.get(path.name), dict) else None
        for name in filter(None, [encoding, "utf-8", "utf-16", "cp1251", "gb18030", "cp1252"]):
            try:
                text = path.read_bytes().decode(name)
                break
            except (UnicodeDecodeError, LookupError):
                continue
        if code:
            docs.append((code, text))
    bbc = sorted((corpora / "bbc_news_fulltext").rglob("*.txt"))[::20]
    return docs + [("en", path.read_text(errors="replace")) for path in bbc]


def with_langdetect():
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0

    def detect(text: str) -> str | None:
        try:
            return detect_langs(text)[0].lang
        except LangDetectException:
            return None
    return detect


def pipeline_document(text: str) -> str | None:
    cleaned = clean(text)
    settings = language.rules()["language"]
    doc, _ = language.document_language(cleaned.clean_text, cleaned.blocks, settings["block_min_letters"],
                                        settings["vote_min_prob"])
    return doc.code


def score(detect, items: list[tuple[str, str]]) -> dict:
    right, errors = 0, Counter()
    start = time.perf_counter()
    for code, text in items:
        found = detect(text)
        if SAME.get(found, found) == code:
            right += 1
        else:
            errors[f"{code}->{found}"] += 1
    seconds = time.perf_counter() - start
    return {"accuracy": round(right / len(items), 4), "right": right, "n": len(items),
            "ms_each": round(1000 * seconds / len(items), 3), "top_errors": dict(errors.most_common(5))}


def pipeline_sentence(text: str) -> str | None:
    """The label `corpus split --no-clean` gives a one-line text."""
    from flows.stages.document import split_text

    found = split_text(text, clean_first=False)
    return found[0]["lang"] if found else None


def langid_dev(corpora: Path) -> None:
    """Accuracy per language on langid_dev (single UD dev sentences, 10 languages), with each
    `--lang-detector`."""
    from flows.stages.rules import use_detector

    items = [(r["lang"], r["text"]) for r in map(json.loads, (corpora / "langid_dev" / "sentences.jsonl").open())]
    for detector in ("fasttext", "langdetect"):
        use_detector(detector)
        name = f"pipeline, {detector}"
        started, right, per = time.perf_counter(), 0, {}
        for code, text in items:
            ok = pipeline_sentence(text) == code
            right += ok
            total, good = per.get(code, (0, 0))
            per[code] = (total + 1, good + ok)
        ms = (time.perf_counter() - started) / len(items) * 1000
        by_language = " ".join(f"{c} {g / t:.3f}" for c, (t, g) in sorted(per.items()))
        print(f"langid_dev, {name:22s} {right / len(items):.4f} ({right}/{len(items)})  {ms:6.3f} ms each   {by_language}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--langid-only", action="store_true", help="only the langid_dev sentences")
    args = parser.parse_args()
    langid_dev(args.corpora)
    if args.langid_only:
        return
    from flows.stages.rules import use_detector

    use_detector("fasttext")  # langid_dev ends on langdetect; the labelled set compares both itself
    docs = labelled_documents(args.corpora)
    sentences = [(code, s.strip()) for code, text in docs for s in SENTENCE.findall(text)
                 if language.letter_count(s) >= 60 and len(s) < 600]
    random.Random(1).shuffle(sentences)
    sentences = sentences[:3000]
    langdetect = with_langdetect()
    results = {
        "documents, langdetect (whole text)": score(langdetect, docs),
        "documents, fastText (whole text)": score(lambda t: language.detect(t).code, docs),
        "documents, pipeline (clean, then fastText blocks vote)": score(pipeline_document, docs),
        "sentences, langdetect": score(langdetect, sentences),
        "sentences, fastText": score(lambda t: language.detect(t).code, sentences),
    }
    print(f"{len(docs)} documents, {len(sentences)} sentences")
    for name, result in results.items():
        print(f"{name:58s} {result['accuracy']:.3f} ({result['right']}/{result['n']})  "
              f"{result['ms_each']:7.3f} ms each   errors {result['top_errors']}")


if __name__ == "__main__":
    main()
