"""Boilerplate removal on real pages with human gold text: token P, R, F1 and cleaning speed.

    python benchmarks/boilerplate.py ../shared/corpora/boilerplate_dev [--split test]

For each page's scraped text (`innertext/`), scores with the folder's own `textscore.py`
(macro and micro token precision, recall and F1 against the gold):
keep-all (every line), the C4-style line rule (`baselines.py`), this pipeline's cleaning
without the boilerplate classifier, and the pipeline as it runs. Sets: dragnet's `--split`
(the classifier is fitted on `train`; report `test`) against article + comments, the same for
the pages of sites with no page in `train` (what a new site gets), and against the article
alone; and all of cleaneval_dev against gold_plain. Also the cleaning stage's
documents per second (one process, the pipeline as it runs, over the dragnet pages).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.stages import clean as clean_module  # noqa: E402
from flows.stages.clean import clean  # noqa: E402


def load(folder: Path, subset: str, split: str | None, unseen: bool = False) -> list[dict]:
    records = [json.loads(line) for line in (folder / subset / "index.jsonl").read_text().splitlines()]
    if split:
        if unseen:  # sites (URL hosts) of no page of the other split; a page without a URL is its own site
            others = {site_of(r) for r in records if r.get("dragnet_split") != split}
            records = [r for r in records if site_of(r) not in others]
        records = [r for r in records if r.get("dragnet_split") == split]
    return records


def site_of(record: dict) -> str:
    """A page's site: its URL's host, or the page itself when the index has no URL."""
    return urlparse(record["url"]).netloc.removeprefix("www.") if record.get("url") else "page " + record["id"]


def read(folder: Path, subset: str, rel: str) -> str:
    return (folder / subset / rel).read_text(encoding="utf-8")


def without_classifier(text: str) -> str:
    real = clean_module.rules()
    with mock.patch.object(clean_module, "rules", lambda: {**real, "boilerplate": {"enabled": False}}):
        return clean(text).clean_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the boilerplate_dev folder")
    parser.add_argument("--split", default="test", choices=["train", "test"], help="dragnet split to score")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    sys.path.insert(0, str(args.folder))
    from baselines import article_only, c4_lines  # the folder's own reference code
    from textscore import score

    systems = {"keep-all": lambda text: text, "c4-lines": c4_lines,
               "pipeline, no classifier": without_classifier, "pipeline": lambda text: clean(text).clean_text}
    sets = [("dragnet " + args.split, "article + comments", "dragnet", args.split, False, lambda r, g: g),
            ("dragnet " + args.split + ", unseen sites", "article + comments", "dragnet", args.split, True,
             lambda r, g: g),
            ("dragnet " + args.split, "article only", "dragnet", args.split, False, lambda r, g: article_only(g, r)),
            ("cleaneval_dev", "gold_plain", "cleaneval_dev", None, False, lambda r, g: g)]
    results, seconds, pages = [], 0.0, 0
    for name, gold_name, subset, split, unseen, gold_of in sets:
        records = load(args.folder, subset, split, unseen)
        texts = [read(args.folder, subset, r["innertext"]) for r in records]
        golds = [gold_of(r, read(args.folder, subset, r["gold_plain"] if "gold_plain" in r else r["gold"]))
                 for r in records]
        for system, run in systems.items():
            started = time.perf_counter()
            outputs = [run(text) for text in texts]
            if system == "pipeline" and subset == "dragnet" and gold_name == "article + comments" and not unseen:
                seconds, pages = time.perf_counter() - started, len(texts)
            results.append({"set": name, "gold": gold_name, "system": system,
                            **{k: round(v, 4) if isinstance(v, float) else v
                               for k, v in score(list(zip(outputs, golds))).items()}})
    speed = {"cleaning_documents_per_second": round(pages / seconds, 1) if seconds else None}
    if args.json:
        print(json.dumps({"results": results, **speed}, indent=1))
        return
    print("| set | gold | system | macro P | macro R | macro F1 | micro P | micro R | micro F1 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['set']} ({r['docs']}) | {r['gold']} | {r['system']} | {r['macro_p']:.3f} | {r['macro_r']:.3f} | "
              f"{r['macro_f1']:.3f} | {r['micro_p']:.3f} | {r['micro_r']:.3f} | {r['micro_f1']:.3f} |")
    print(f"\ncleaning (the pipeline as it runs, one process): {speed['cleaning_documents_per_second']} documents/s")


if __name__ == "__main__":
    main()
