"""Decode every labelled file of the encoding corpus and compare with its true encoding.

Usage: python benchmarks/decode_corpus.py [../shared/corpora/encoding_mojibake]

For each file of chardet_tests/ and charset_normalizer_data/ (labels in their encodings.json),
the pipeline's decode() must give the same text as the labelled codec, or a reject. Prints
counts per outcome and lists every wrong decode.
"""

from __future__ import annotations

import codecs
import json
import sys
from collections import Counter
from pathlib import Path

from flows.stages.decode import decode
from flows.stages.records import Reject

ALIASES = {"ascii": "utf-8"}  # ASCII files are valid UTF-8 and decode identically


def expected_text(data: bytes, label: str) -> str | None:
    try:
        codec = codecs.lookup(ALIASES.get(label.lower(), label)).name
    except LookupError:
        return None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    return text.lstrip("\ufeff")


def main(root: Path) -> int:
    outcomes: Counter[str] = Counter()
    wrong: list[str] = []
    for folder in ("charset_normalizer_data", "chardet_tests"):
        labels = json.loads((root / folder / "encodings.json").read_text())
        for name, info in sorted(labels.items()):
            path = root / folder / name
            data = path.read_bytes()
            label = info.get("python_codec") or info["encoding"]
            truth = expected_text(data, label)
            result = decode(data, name)
            if truth is None:
                outcomes[f"{folder}: label not decodable by Python"] += 1
            elif isinstance(result, Reject):
                outcomes[f"{folder}: reject ({result.error_kind})"] += 1
            elif result[0].lstrip("\ufeff") == truth:
                outcomes[f"{folder}: right text"] += 1
            else:
                outcomes[f"{folder}: WRONG text"] += 1
                wrong.append(f"{folder}/{name}: labelled {label}, decoded as {result[1]}")
    for outcome, count in sorted(outcomes.items()):
        print(f"{count:5d}  {outcome}")
    for line in wrong:
        print("  wrong:", line)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpora/encoding_mojibake")))
