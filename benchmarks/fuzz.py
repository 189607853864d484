"""Fuzz decode + clean + segment + language for a bounded time (hypothesis, many examples).

    python benchmarks/fuzz.py --seconds 600

Runs the property tests of tests/test_properties.py in rounds of --examples examples, each round
with a new seed, until --seconds have passed. A failure prints hypothesis's minimal example
and stops with exit status 1: keep that input as a regression test (tests/test_hostile.py or
test_properties.py), fix, and run again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import test_properties  # noqa: E402



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--examples", type=int, default=2000, help="examples per property per round")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.seconds
    rounds = examples = 0
    while time.monotonic() < deadline:
        for n, (check, strategy) in enumerate(test_properties.PROPERTIES):
            name = f"{check.__name__}#{n}"
            fuzzed = settings(max_examples=args.examples, deadline=None, database=None,
                              suppress_health_check=list(HealthCheck))(seed(rounds)(given(strategy)(check)))
            started = time.monotonic()
            try:
                fuzzed()
            except Exception as exc:  # hypothesis has already printed the minimal example
                print(f"FAILED {name} (round {rounds}): {type(exc).__name__}: {exc}")
                return 1
            examples += args.examples
            print(f"round {rounds} {name}: {args.examples} examples in {time.monotonic() - started:.0f} s",
                  flush=True)
            if time.monotonic() >= deadline:
                break
        rounds += 1
    print(f"no failure: {examples} examples in {rounds} round(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
