"""Sentence splitters compared: accuracy on the gold set, throughput on real text.

Usage: python benchmarks/splitters.py [TEXT_DIR] [--json OUT]

Accuracy: sentence-level precision/recall/F1 against tests/fixtures/gold_sentences.jsonl
(a predicted sentence counts when its exact span is a gold sentence), and the share of blocks
split exactly right. Throughput: MB/s and sentences/s, one process, over the paragraphs of
TEXT_DIR (default: raw/sample), each splitter called once per paragraph as the pipeline does.
Optional candidates (sentencex, spaCy's sentencizer) are measured when installed
(`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from flows.stages import segment
from flows.stages.decode import decode
from flows.stages.records import Reject

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "tests" / "fixtures" / "gold_sentences.jsonl"


def candidates() -> dict[str, Callable[[str], list[str]]]:
    found: dict[str, Callable[[str], list[str]]] = {
        "pysbd": segment.pysbd_split,
        "blingfire": segment.blingfire_split,
        "nupunkt": segment.nupunkt_split,
        "syntok": segment.syntok_split,
        "boundary classifier over nupunkt, blingfire and terminal marks (chosen)": segment.split_sentences,
    }
    try:
        import sentencex

        found["sentencex"] = lambda text: list(sentencex.segment("en", text))
    except ImportError:
        pass
    try:
        import spacy

        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        found["spacy sentencizer"] = lambda text: [s.text for s in nlp(text).sents]
    except ImportError:
        pass
    return found


def accuracy(split: Callable[[str], list[str]], gold: list[dict]) -> dict:
    tp = n_pred = n_gold = exact = 0
    for block in gold:
        truth = set(segment.align(block["text"], block["sentences"]))
        predicted = set(segment.align(block["text"], split(block["text"])))
        tp += len(truth & predicted)
        n_pred, n_gold = n_pred + len(predicted), n_gold + len(truth)
        exact += truth == predicted
    precision, recall = tp / n_pred, tp / n_gold
    return {"precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(2 * precision * recall / (precision + recall), 4),
            "blocks_exact": round(exact / len(gold), 4)}


def paragraphs(text_dir: Path) -> list[str]:
    found = []
    for path in sorted(p for p in text_dir.rglob("*") if p.is_file()):
        decoded = decode(path.read_bytes(), path.name)
        if not isinstance(decoded, Reject):
            found += [p.strip() for p in decoded[0].split("\n") if p.strip()]
    return found


def throughput(split: Callable[[str], list[str]], texts: list[str], min_seconds: float = 2.0) -> dict:
    size = sum(len(t.encode("utf-8")) for t in texts)
    rounds, sentences, start = 0, 0, time.perf_counter()
    while True:
        for text in texts:
            sentences += len(split(text))
        rounds += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    return {"mb_per_s": round(size * rounds / elapsed / 1e6, 3),
            "sentences_per_s": round(sentences / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text_dir", nargs="?", default=str(ROOT / "raw" / "sample"))
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    gold = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines()]
    texts = paragraphs(Path(args.text_dir))
    print(f"gold: {len(gold)} blocks, {sum(len(b['sentences']) for b in gold)} sentences; "
          f"throughput text: {len(texts)} paragraphs, "
          f"{sum(len(t.encode()) for t in texts) / 1e6:.2f} MB from {args.text_dir}")
    results = {}
    print(f"{'splitter':34s} {'P':>6s} {'R':>6s} {'F1':>6s} {'exact':>6s} {'MB/s':>7s} {'sent/s':>8s}")
    for name, split in candidates().items():
        row = {**accuracy(split, gold), **throughput(split, texts)}
        results[name] = row
        print(f"{name:34s} {row['precision']:6.3f} {row['recall']:6.3f} {row['f1']:6.3f} "
              f"{row['blocks_exact']:6.3f} {row['mb_per_s']:7.2f} {row['sentences_per_s']:8d}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
