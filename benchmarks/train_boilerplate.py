"""Fit the boilerplate classifier's weights on dragnet's train split (flows/stages/boilerplate_model.json).

    python benchmarks/train_boilerplate.py ../shared/corpora/boilerplate_dev

A line of a page's scraped text (`innertext/`) is labelled content when the human gold text
(article + comments) holds it: the whole line as a run of the gold's tokens (lines of four
tokens or more), the same line in the gold (shorter ones), or, for a long line, nearly all its
tokens. Two gradient-boosted tree ensembles (scikit-learn's HistGradientBoostingClassifier, a
fixed seed; lines weighted by their tokens, as the token F1 the benchmark reports is) are
fitted: the first on each line's own and neighbourhood features, the second on the first's
out-of-fold probabilities of the line and its neighbours. The threshold is the highest whose
macro token recall on the train split's out-of-fold probabilities is at least 0.95, with
prose lines kept as `clean` keeps them.
scikit-learn is needed here only (`pip install -e '.[bench]'`); the pipeline reads the trees
with NumPy.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.stages import boilerplate  # noqa: E402
from flows.stages.trees import Forest  # noqa: E402
from flows.stages.clean import _is_prose, read_lines  # noqa: E402
from flows.stages.rules import rules  # noqa: E402

TOKEN = re.compile(r"\w+")
FOLDS = 5
TREES, DEPTH = 80, 4
MIN_RECALL = 0.95


def tokens(text: str) -> list[str]:
    return [t.lower() for t in TOKEN.findall(text)]


def label_lines(lines: list[str], gold: str) -> list[int]:
    gold_tokens = tokens(gold)
    gold_run = " " + " ".join(gold_tokens) + " "
    gold_lines = {" ".join(tokens(line)) for line in gold.splitlines()}
    gold_set = set(gold_tokens)
    labels = []
    for line in lines:
        toks = tokens(line)
        joined = " ".join(toks)
        if not toks:
            labels.append(0)
        elif len(toks) >= 4 and f" {joined} " in gold_run:
            labels.append(1)
        elif joined in gold_lines:
            labels.append(1)
        elif len(toks) >= 8 and sum(t in gold_set for t in toks) / len(toks) >= 0.8:
            labels.append(1)
        else:
            labels.append(0)
    return labels


def pages(folder: Path, split: str) -> list[dict]:
    records = [json.loads(line) for line in (folder / "dragnet" / "index.jsonl").read_text().splitlines()]
    chosen = []
    for record in records:
        if record["dragnet_split"] != split:
            continue
        text = (folder / "dragnet" / record["innertext"]).read_text(encoding="utf-8")
        gold = (folder / "dragnet" / record["gold"]).read_text(encoding="utf-8")
        lines = [line.text for line in read_lines(text)[0]]
        if lines:
            chosen.append({"id": record["id"], "lines": lines, "gold": gold,
                           "labels": label_lines(lines, gold)})
    return chosen


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> HistGradientBoostingClassifier:
    model = HistGradientBoostingClassifier(max_iter=TREES, max_depth=DEPTH, learning_rate=0.1,
                                           early_stopping=False, random_state=0)
    return model.fit(x, y, sample_weight=w)


def export(model: HistGradientBoostingClassifier) -> dict:
    """The ensemble as the flat arrays `trees.Forest` reads (trees padded to one width)."""
    trees = [predictor[0].nodes for predictor in model._predictors]
    width = max(len(t) for t in trees)

    def column(name, cast, pad):
        return [[cast(v) for v in t[name]] + [pad] * (width - len(t)) for t in trees]

    return {
        "baseline": round(float(model._baseline_prediction.ravel()[0]), 8),
        "depth": int(max(t["depth"].max() for t in trees)),
        "feature": column("feature_idx", int, 0),
        "threshold": [[round(v, 8) for v in row] for row in column("num_threshold", float, 0.0)],
        "left": column("left", int, 0),
        "right": column("right", int, 0),
        "leaf": column("is_leaf", int, 1),
        "value": [[round(v, 8) for v in row] for row in column("value", float, 0.0)],
    }


def fit_pages(pages: list[dict], rows: list[list[list[float]]], chosen) -> dict:
    """The exported ensemble fitted on the rows (one list per page) of the pages `chosen`."""
    return export(fit(stack([r for i in chosen for r in rows[i]]),
                      np.asarray([l for i in chosen for l in pages[i]["labels"]], dtype=float),
                      np.asarray([t for i in chosen for t in token_weights(pages[i]["lines"])], dtype=float)))


def out_of_fold(pages: list[dict], rows: list[list[list[float]]]) -> list[list[float]]:
    """Every page's probabilities from an ensemble fitted on the pages of the other folds."""
    probs: list[list[float]] = [[] for _ in pages]
    for fold in range(FOLDS):
        forest = Forest(fit_pages(pages, rows, [i for i in range(len(pages)) if i % FOLDS != fold]))
        for i in range(fold, len(pages), FOLDS):
            probs[i] = [float(p) for p in forest.probabilities(rows[i])]
    return probs


def stack(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=float)


def token_weights(lines: list[str]) -> list[float]:
    return [min(len(tokens(line)), 50) + 1 for line in lines]


def macro_f1(train: list[dict], probs: list[list[float]], threshold: float) -> tuple[float, float]:
    """Macro token F1 and recall of the lines kept at `threshold` (prose lines are always kept,
    as `clean` keeps them)."""
    from collections import Counter

    spec = rules()["boilerplate"]
    f1s, recalls = [], []
    for page, p in zip(train, probs):
        kept = " ".join(line for line, q in zip(page["lines"], p) if q >= threshold or _is_prose(line, spec))
        pred, gold = Counter(tokens(kept)), Counter(tokens(page["gold"]))
        tp = sum((pred & gold).values())
        prec = tp / sum(pred.values()) if pred else (1.0 if not gold else 0.0)
        rec = tp / sum(gold.values()) if gold else 1.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
        recalls.append(rec)
    return float(np.mean(f1s)), float(np.mean(recalls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the boilerplate_dev folder")
    parser.add_argument("--out", type=Path, default=boilerplate.MODEL_PATH)
    args = parser.parse_args()

    train = pages(args.folder, "train")
    everything = range(len(train))
    feats = [boilerplate.features(p["lines"]) for p in train]
    first_spec = fit_pages(train, feats, everything)
    context = [boilerplate._context(probs) for probs in out_of_fold(train, feats)]
    context_spec = fit_pages(train, context, everything)
    # The threshold from out-of-fold probabilities of both stages, as unseen pages would give.
    probs = out_of_fold(train, context)
    labels = np.asarray([l for p in train for l in p["labels"]], dtype=float)
    scored = [(float(t), *macro_f1(train, probs, t)) for t in np.arange(0.05, 0.9, 0.01)]
    best = max((r for r in scored if r[2] >= MIN_RECALL), key=lambda r: r[0])
    model = {
        "about": "Gradient-boosted trees of flows/stages/boilerplate.py, fitted by "
                 "benchmarks/train_boilerplate.py on dragnet's train split",
        "train_pages": len(train), "train_lines": int(len(labels)), "content_share": round(float(labels.mean()), 4),
        "threshold": round(best[0], 3),
        "cross_validated_macro_f1": round(best[1], 4), "cross_validated_macro_recall": round(best[2], 4),
        "lines": first_spec, "context": context_spec,
    }
    args.out.write_text(json.dumps(model, separators=(",", ":")) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in model.items() if k not in ("lines", "context")}, indent=1))


if __name__ == "__main__":
    main()
