"""Compare two revisions of the stage code on one corpus: CPU time and whether the rows are equal.

    python benchmarks/compare.py HEAD~3 . --raw /tmp/corpus20 --rounds 3
    python benchmarks/compare.py main . --mb 20 --source ../shared/corpora/bbc_news_fulltext

Each revision (a git revision, or `.` for the working tree) is exported to a temporary folder
and run in fresh processes, the two interleaved round after round (A B, then B A, ...), so that
both meet the same machine: on a shared VM the speed drifts by 2x between days and by 10% between
minutes, and only a ratio measured in one run means anything. A run finds the files and their
sources as a run does (`ingest.inventory`), fingerprints them and plans their repeated lines
(`state.repeat_plan`, on an empty warehouse), all in one process, then times
`shards.process_shard` over all of them (after a warm-up shard that loads the models). Reported:
CPU seconds of the fingerprint pass and of processing, min and median over the rounds, their
ratio, and a digest of every staged table (without its pipeline_version column) of each
revision, so a change meant to be a pure speed-up shows that it changed no row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import make_corpus  # noqa: E402

# Runs in a fresh interpreter with the revision's folder first on sys.path.
_CHILD = r'''
import hashlib, json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
# The revision's own files only: an editable install's finder would map package data (such as
# flows.contracts) to the working tree.
sys.meta_path = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
import importlib.util
contracts = Path(sys.argv[1]) / "schemas"
if (contracts / "__init__.py").exists():  # installed as flows.contracts: the revision's own
    spec = importlib.util.spec_from_file_location("flows.contracts", contracts / "__init__.py",
                                                  submodule_search_locations=[str(contracts)])
    sys.modules["flows.contracts"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules["flows.contracts"])
import pyarrow.parquet as pq
try:
    from flows.run import planning, shards
    from flows.stages.ingest import inventory
    from flows.stages.rules import rules
    from flows.warehouse import Warehouse, state
except ImportError:  # a revision from before the layered packages (flows/*.py)
    from flows import pipeline as shards, planning, state
    from flows.ingest import inventory
    from flows.rules import rules
    from flows.warehouse import Warehouse

raw_dir, limit = Path(sys.argv[2]), int(sys.argv[3])
found = inventory(raw_dir)
files = found.files[:limit] if limit else found.files
sources = {source.source_id: source for source in found.sources}
staging = Path(tempfile.mkdtemp(prefix="compare-"))
(staging / "wh" / "staging").mkdir(parents=True)  # where the capped connection spills
started = time.process_time()
shards.fingerprint_shard(raw_dir, files, staging, 0)
fingerprint_seconds = time.process_time() - started
state.repeat_plan(Warehouse(staging / "wh"), [shards.shard_file(staging, "fingerprints", 0)], [],
                  rules()["structure"]["cross_document_min_docs"], staging / "repeats.parquet")
repeats = planning.load_repeats(staging / "repeats.parquet", {raw.meta.source_id for raw in files})
shards.process_shard(raw_dir, files[:2], sources, repeats, staging, 9)  # loads models and caches
started = time.process_time()
shards.process_shard(raw_dir, files, sources, repeats, staging, 1)
process_seconds = time.process_time() - started
digests = {}
for name in shards.DOCUMENT_TABLES:
    table = pq.read_table(shards.shard_file(staging, name, 1))
    table = table.drop_columns([c for c in ("pipeline_version",) if c in table.column_names])
    digests[name] = f"{table.num_rows} rows " + hashlib.sha256(repr(table.to_pylist()).encode()).hexdigest()[:16]
print(json.dumps({"files": len(files), "fingerprint": fingerprint_seconds, "process": process_seconds,
                  "digests": digests}))
'''


def export(revision: str, into: Path) -> Path:
    """The revision's files in a folder of their own (`.`: the working tree as it is)."""
    if revision == ".":
        return ROOT
    folder = into / revision.replace("/", "_").replace("~", "-").replace("^", "-")
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_once(tree: Path, raw: Path, files: int) -> dict:
    result = subprocess.run([sys.executable, "-c", _CHILD, str(tree), str(raw), str(files)],
                            capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"compare.py: the run of {tree} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="git revision to compare against")
    parser.add_argument("head", nargs="?", default=".", help="git revision, or . for the working tree")
    corpus = parser.add_mutually_exclusive_group(required=True)
    corpus.add_argument("--raw", type=Path, help="a folder of raw files")
    corpus.add_argument("--mb", type=float, help="generate a corpus of this many MB (make_corpus.py)")
    parser.add_argument("--source", type=Path, default=ROOT / "raw" / "sample", help="real text for --mb")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=0, help="only the first N files (0: all)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="compare-") as scratch:
        raw = args.raw
        if raw is None:
            raw = Path(scratch) / "raw"
            make_corpus.generate(raw, make_corpus.load_paragraphs(args.source), seed=0, max_docs=None,
                                 max_bytes=int(args.mb * 1e6))
        trees = {name: export(name, Path(scratch)) for name in (args.base, args.head)}
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for round_number in range(args.rounds):
            order = list(trees) if round_number % 2 == 0 else list(trees)[::-1]
            for name in order:
                runs[name].append(run_once(trees[name], raw, args.files))
                print(f"round {round_number + 1}: {name}: process {runs[name][-1]['process']:.2f} s CPU", flush=True)

    print(f"\n{runs[args.base][0]['files']} files, {args.rounds} rounds, CPU seconds (min / median)")
    mins = {}
    for name, results in runs.items():
        fingerprint = [r["fingerprint"] for r in results]
        process = [r["process"] for r in results]
        mins[name] = (min(fingerprint), min(process))
        print(f"  {name:>12}: fingerprint {min(fingerprint):.2f} / {statistics.median(fingerprint):.2f}, "
              f"process {min(process):.2f} / {statistics.median(process):.2f}")
    print(f"  {args.head} / {args.base}: fingerprint {mins[args.head][0] / mins[args.base][0]:.3f}, "
          f"process {mins[args.head][1] / mins[args.base][1]:.3f} (of the minimums)")
    base_digests, head_digests = runs[args.base][0]["digests"], runs[args.head][0]["digests"]
    differing = [name for name in base_digests if base_digests[name] != head_digests.get(name)]
    print("rows: identical in every table" if not differing else f"rows differ in: {', '.join(differing)}")
    for name in differing:
        print(f"  {name}: {base_digests[name]}  ->  {head_digests.get(name)}")


if __name__ == "__main__":
    main()
