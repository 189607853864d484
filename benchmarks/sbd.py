"""Sentence boundaries on UD English (EWT, GUM): the pipeline's splitter beside single tools.

Usage: python benchmarks/sbd.py ../shared/corpora/sbd_dev [--split dev] [--errors N]

Each record's text is split line by line (a line is a paragraph: newline = boundary, as
`corpus split --no-clean` does), and every splitter's sentence starts inside the document
are compared with the gold ones: boundary precision, recall and F1, micro-averaged over all
documents of a set. With --errors N, prints N missed and N spurious boundaries of the chosen
splitter with their context.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from flows.stages import segment

SETS = ("ud_ewt", "ud_gum")


def gold_boundaries(record: dict) -> set[int]:
    spans = segment.align(record["text"], record["sentences"])
    return {start for start, _ in spans[1:]}


def predicted_boundaries(text: str, split: Callable[[str], list[str]]) -> set[int]:
    starts, offset = [], 0
    for line in text.split("\n"):
        if line.strip():
            starts += [offset + start for start, _ in segment.align(line, split(line))]
        offset += len(line) + 1
    return set(starts[1:])


def score(records: list[dict], split: Callable[[str], list[str]], errors: int = 0) -> dict:
    tp = n_pred = n_gold = 0
    missed, spurious = [], []
    start = time.perf_counter()
    for record in records:
        gold, predicted = gold_boundaries(record), predicted_boundaries(record["text"], split)
        tp += len(gold & predicted)
        n_pred, n_gold = n_pred + len(predicted), n_gold + len(gold)
        if errors:
            text = record["text"]
            missed += [text[max(0, b - 40):b] + " ‖ " + text[b:b + 30] for b in sorted(gold - predicted)]
            spurious += [text[max(0, b - 40):b] + " ‖ " + text[b:b + 30] for b in sorted(predicted - gold)]
    seconds = time.perf_counter() - start
    precision, recall = tp / max(n_pred, 1), tp / max(n_gold, 1)
    result = {"precision": round(precision, 4), "recall": round(recall, 4),
              "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 4), "seconds": round(seconds, 2)}
    if errors:
        result["missed"], result["spurious"] = missed[:errors], spurious[:errors]
    return result


def splitters() -> dict[str, Callable[[str], list[str]]]:
    return {"pipeline": segment.split_sentences, "blingfire": segment.blingfire_split,
            "nupunkt": segment.nupunkt_split, "syntok": segment.syntok_split, "pysbd": segment.pysbd_split}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--errors", type=int, default=0)
    parser.add_argument("--only", default=None, help="Measure only this splitter.")
    args = parser.parse_args()
    table = {}
    for name in SETS:
        records = [json.loads(line) for line in (args.folder / f"{name}_{args.split}.jsonl").open()]
        for tool, split in splitters().items():
            if args.only and tool != args.only:
                continue
            table[f"{name}_{args.split} {tool}"] = result = score(records, split, args.errors if tool == "pipeline" else 0)
            print(f"{name}_{args.split:5} {tool:10} P {result['precision']:.4f} R {result['recall']:.4f} "
                  f"F1 {result['f1']:.4f} {result['seconds']:7.2f} s", flush=True)
            for kind in ("missed", "spurious"):
                for example in result.get(kind, []):
                    print(f"  {kind:8} {example!r}")


if __name__ == "__main__":
    main()
