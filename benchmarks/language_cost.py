"""What language detection costs, and whether its fast path changes any label.

Usage: python benchmarks/language_cost.py [TEXT_DIR]  (default: raw/sample)

Cleans and segments every file, then assigns languages twice: with the fast path (the detector
called only where the answer can change a label) and with it on every block and long
sentence. Prints detector calls and seconds of each, and the number of labels that differ.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from contextlib import nullcontext

from flows.stages import fastpaths
from flows.stages import language
from flows.stages.clean import clean
from flows.stages.decode import decode
from flows.stages.records import Reject
from flows.stages.segment import segment


def main(text_dir: Path) -> None:
    docs = []
    for path in sorted(p for p in text_dir.rglob("*") if p.is_file()):
        decoded = decode(path.read_bytes(), path.name)
        if isinstance(decoded, Reject):
            continue
        cleaned = clean(decoded[0])
        docs.append((cleaned, segment(cleaned.clean_text, cleaned.blocks)))
    real_detect = language.detect
    results = {}
    for fast in (True, False):
        calls = 0

        def counting(text: str, max_chars: int = 0):
            nonlocal calls
            calls += 1
            return real_detect(text, max_chars)

        language.detect = counting
        start = time.perf_counter()
        with nullcontext() if fast else fastpaths.disabled():
            labels = [language.assign(c.clean_text, c.blocks, spans) for c, spans in docs]
        results[fast] = (labels, calls, time.perf_counter() - start)
    language.detect = real_detect
    n_sentences = sum(len(spans) for _, spans in docs)
    differ = sum(
        a != b for (da, la), (db, lb) in zip(results[True][0], results[False][0]) for a, b in zip([da] + la, [db] + lb)
    )
    print(f"{len(docs)} documents, {n_sentences} sentences")
    for fast in (True, False):
        _, calls, seconds = results[fast]
        print(f"{'fast path' if fast else 'detect everywhere':18s} {calls:7d} detector calls  {seconds:7.2f} s")
    print(f"labels that differ: {differ}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "raw/sample"))
