"""Fit the boilerplate classifier's weights on dragnet's train split (flows/stages/boilerplate_model.json).

    python benchmarks/train_boilerplate.py ../shared/corpora/boilerplate_dev [--check]

A line of a page's scraped text (`innertext/`) is labelled content when the human gold text
(article + comments) holds it: the whole line as a run of the gold's tokens (lines of four
tokens or more), the same line in the gold (shorter ones), or, for a long line, nearly all its
tokens. The word lexicon is counted over sites (a page's site is its URL's host, or the page
itself when the index has no URL): a word is in it when at least MIN_SITES sites use it.
Two gradient-boosted tree ensembles (scikit-learn's HistGradientBoostingClassifier, a fixed
seed) are fitted: the first on each line's own, neighbourhood and word features, the second
on the first's out-of-fold probabilities of the line, its neighbours and the page, with the
line's own features. Lines are weighted
by their tokens and every page weighs the same, as in the macro token F1 the benchmark
reports. Folds hold whole sites, so every out-of-fold figure is one for sites the model (and
the lexicon) never saw. The threshold is the highest at which every fold's macro token
recall (its out-of-fold probabilities, lines kept as `clean` keeps them) is at least
MIN_RECALL: each fold is a set of sites new to the model, as a user's are.
scikit-learn is needed here only (`pip install -e '.[bench]'`); the pipeline reads the trees
with NumPy.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.boilerplate import site_of  # noqa: E402
from flows.stages import boilerplate  # noqa: E402
from flows.stages.trees import Forest  # noqa: E402
from flows.stages.clean import read_lines  # noqa: E402
from flows.stages.rules import rules  # noqa: E402

TOKEN = re.compile(r"\w+")
FOLDS = 5
TREES, DEPTH = 200, 6
MIN_RECALL = 0.95
MIN_SITES = 10  # a word of fewer sites' pages is not in the lexicon: it says more about the site than the line
SMOOTHING = 1.0  # added to every count of the lexicon's ratios
LEXICON_CLIP = 4.0  # the largest log ratio a word is given
PAGE_WEIGHT = 200.0  # every page's lines weigh this much together


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
            chosen.append({"id": record["id"], "site": site_of(record), "lines": lines, "gold": gold,
                           "labels": label_lines(lines, gold)})
    return chosen


def folds(pages: list[dict]) -> list[tuple[list[int], list[int]]]:
    """Each fold's pages and the other folds' pages, as indices; a site is in one fold only."""
    fold_of = [zlib.crc32(page["site"].encode("utf-8")) % FOLDS for page in pages]
    return [([i for i, f in enumerate(fold_of) if f == fold], [i for i, f in enumerate(fold_of) if f != fold])
            for fold in range(FOLDS)]


def lexicon(pages: list[dict]) -> dict[str, float]:
    """Every word used by at least MIN_SITES sites: the log ratio of its share of content lines
    to its share of chrome lines (smoothed, clipped), sorted for stable bytes."""
    lines_with = (Counter(), Counter())
    totals = [0, 0]
    site_words: dict[str, set[str]] = {}
    for page in pages:
        seen = site_words.setdefault(page["site"], set())
        for line, label in zip(page["lines"], page["labels"]):
            words = boilerplate.line_words(line)
            totals[label] += 1
            lines_with[label].update(words)
            seen |= words
    sites = Counter(word for words in site_words.values() for word in words)
    ratio = {}
    for word in sorted(w for w, n in sites.items() if n >= MIN_SITES):
        log_ratio = (math.log((lines_with[1][word] + SMOOTHING) / (totals[1] + SMOOTHING))
                     - math.log((lines_with[0][word] + SMOOTHING) / (totals[0] + SMOOTHING)))
        ratio[word] = round(max(-LEXICON_CLIP, min(LEXICON_CLIP, log_ratio)), 3)
    return ratio


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
    for held_out, rest in folds(pages):
        forest = Forest(fit_pages(pages, rows, rest))
        for i in held_out:
            probs[i] = [float(p) for p in forest.probabilities(rows[i])]
    return probs


def out_of_fold_features(pages: list[dict]) -> list[list[list[float]]]:
    """Every page's features with the lexicon of the other folds' pages, as unseen sites get."""
    rows: list[list[list[float]]] = [[] for _ in pages]
    for held_out, rest in folds(pages):
        words = lexicon([pages[i] for i in rest])
        for i in held_out:
            rows[i] = boilerplate.features(pages[i]["lines"], words)
    return rows


def stack(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=float)


def token_weights(lines: list[str]) -> list[float]:
    """A line's weight: its tokens (capped), scaled so that every page weighs PAGE_WEIGHT."""
    weights = [min(len(tokens(line)), 50) + 1 for line in lines]
    return [w * PAGE_WEIGHT / sum(weights) for w in weights]


def macro_f1(train: list[dict], probs: list[list[float]], threshold: float) -> tuple[float, float]:
    """Macro token F1 and recall of the lines kept at `threshold`, as `clean` keeps them: every
    line of a page none of whose lines reaches page_min_content."""
    page_min = rules()["boilerplate"]["page_min_content"]
    f1s, recalls = [], []
    for page, p in zip(train, probs):
        cut = threshold if max(p) >= page_min else 0.0
        kept = " ".join(line for line, q in zip(page["lines"], p) if q >= cut)
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
    parser.add_argument("--check", action="store_true",
                        help="only say whether --out is what this data gives (exit 1 if not)")
    args = parser.parse_args()
    # One thread: the sums of a histogram in parallel come in any order, and so do their
    # last bits, which would give other trees on every run.
    with threadpool_limits(limits=1):
        model = fit_model(args.folder)
    text = json.dumps(model, separators=(",", ":")) + "\n"
    if args.check:
        same = args.out.read_text(encoding="utf-8") == text
        print(f"{args.out.name} is " + ("what this data gives" if same else "NOT what this data gives"))
        sys.exit(0 if same else 1)
    args.out.write_text(text, encoding="utf-8")
    print(json.dumps({k: v for k, v in model.items() if k not in ("lines", "context", "lexicon")}, indent=1))


def fit_model(folder: Path) -> dict:
    """The model file's content: both ensembles, the lexicon and the threshold."""
    train = pages(folder, "train")
    everything = range(len(train))
    feats = out_of_fold_features(train)
    first_spec = fit_pages(train, feats, everything)
    context = [boilerplate.context_features(probs, rows) for probs, rows in zip(out_of_fold(train, feats), feats)]
    context_spec = fit_pages(train, context, everything)
    # The threshold from out-of-fold probabilities of both stages, as unseen pages would give.
    probs = out_of_fold(train, context)
    labels = np.asarray([l for p in train for l in p["labels"]], dtype=float)
    held_outs = [held_out for held_out, _ in folds(train)]

    def worst_fold_recall(t: float) -> float:
        return min(macro_f1([train[i] for i in fold], [probs[i] for i in fold], t)[1] for fold in held_outs)


    threshold = next(float(t) for t in np.round(np.arange(0.9, 0.04, -0.01), 2) if worst_fold_recall(t) >= MIN_RECALL)
    best = (threshold, *macro_f1(train, probs, threshold))
    return {
        "about": "Gradient-boosted trees of flows/stages/boilerplate.py, fitted by "
                 "benchmarks/train_boilerplate.py on dragnet's train split",
        "train_pages": len(train), "train_sites": len({p["site"] for p in train}),
        "train_lines": int(len(labels)), "content_share": round(float(labels.mean()), 4),
        "threshold": round(best[0], 3),
        "cross_validated_macro_f1": round(best[1], 4), "cross_validated_macro_recall": round(best[2], 4),
        "cross_validated_worst_fold_recall": round(worst_fold_recall(threshold), 4),
        "lines": first_spec, "context": context_spec, "lexicon": lexicon(train),
    }


if __name__ == "__main__":
    main()
