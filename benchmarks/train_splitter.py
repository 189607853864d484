"""Train the sentence-boundary classifier: flows/stages/sentence_model.json.

Usage: python benchmarks/train_splitter.py ../shared/corpora/sbd_dev [--check]

Fits gradient-boosted trees (scikit-learn, `pip install -e .[bench]`) on every candidate
sentence start (`segment.candidates`) of the UD English-EWT and GUM **train** splits, labelled
by whether a gold sentence starts there, and writes the ensemble as data for
`flows.stages.trees.Forest`. Each line of a record is a paragraph, as `corpus split --no-clean`
reads it. Deterministic: the same data gives the same file, byte for byte. Then scores the
dev splits (benchmarks/sbd.py). With --check, only says whether the file in the repository
is the one this data gives.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sbd import gold_boundaries, score  # noqa: E402
from train_boilerplate import export  # noqa: E402

from flows.stages import fastpaths, segment  # noqa: E402

TRAIN = ("ud_ewt_train", "ud_gum_train")
TREES, DEPTH, RATE = 100, 6, 0.2
THRESHOLD = 0.5


def examples(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    with fastpaths.disabled():  # every candidate as the full path finds it
        return _examples(folder)


def _examples(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    for name in TRAIN:
        for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            gold, offset = gold_boundaries(record), 0
            for paragraph in record["text"].split("\n"):
                if paragraph.strip():
                    for start, features in segment.candidates(paragraph):
                        rows.append(features)
                        labels.append(offset + start in gold)
                offset += len(paragraph) + 1
    return np.asarray(rows, dtype=float), np.asarray(labels, dtype=float)


def train(folder: Path) -> dict:
    x, y = examples(folder)
    model = HistGradientBoostingClassifier(max_iter=TREES, max_depth=DEPTH, learning_rate=RATE,
                                           early_stopping=False, random_state=0)
    model.fit(x, y)
    print(f"fitted on {len(y)} candidates ({int(y.sum())} sentence starts) of {', '.join(TRAIN)}")
    return {"threshold": THRESHOLD, "trees": export(model)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = json.dumps(train(args.folder), separators=(",", ":")) + "\n"
    if args.check:
        same = segment.SENTENCE_MODEL_PATH.read_text(encoding="utf-8") == text
        print("sentence_model.json is " + ("what this data gives" if same else "NOT what this data gives"))
        sys.exit(0 if same else 1)
    segment.SENTENCE_MODEL_PATH.write_text(text, encoding="utf-8")
    segment._boundary_model.cache_clear()
    for name in ("ud_ewt_dev", "ud_gum_dev"):
        records = [json.loads(line) for line in (args.folder / f"{name}.jsonl").open()]
        result = score(records, segment.split_sentences)
        print(f"{name}: P {result['precision']:.4f} R {result['recall']:.4f} F1 {result['f1']:.4f}")


if __name__ == "__main__":
    main()
