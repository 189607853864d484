"""Run reports: the numbers of one run as Markdown and as table rows (Prefect artifacts).

Takes a run's counts, timings, rejects and the staged rows' removal rules and languages (see
`flows.parquet.column_counts`); gives text. Pure: the flow publishes it, tests read it.
"""

from __future__ import annotations

from collections import Counter


def _rows(header: tuple[str, str], items) -> list[str]:
    return [f"| {header[0]} | {header[1]} |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in items), ""]


def markdown(run_id: str, snapshot_id: int, counts: dict, stage_seconds: dict, rejects: list[dict],
             rules: Counter, languages: Counter) -> str:
    status = f"completed with {len(rejects)} reject(s)" if rejects else "completed"
    lines = [f"# Corpus run {run_id}", "", f"Snapshot {snapshot_id}: {status}.", "",
             "## Files and rows", "", *_rows(("count", "value"), counts.items()),
             "## Removals per rule", "", *_rows(("rule", "lines"), rules.most_common()),
             "## Sentence languages", "", *_rows(("lang", "sentences"), languages.most_common()),
             "## Seconds per stage", "", *_rows(("stage", "seconds"), stage_seconds.items())]
    if rejects:
        lines += ["## Rejects", "", "| file | kind | reason |", "| --- | --- | --- |"]
        lines += [f"| {r['raw_path']} | {r['error_kind']} | {r['message']} |" for r in rejects]
    return "\n".join(lines) + "\n"


def table(counts: dict, stage_seconds: dict) -> list[dict]:
    return [{"name": k, "value": v} for k, v in counts.items()] + [
        {"name": f"seconds_{k}", "value": v} for k, v in stage_seconds.items()
    ]
