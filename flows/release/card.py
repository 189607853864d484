"""The documents of a release: dataset card, changelog and Croissant metadata.

Takes a release's manifest and its exported Parquet files; gives Markdown and JSON-LD text.
Everything is derived from the data, the manifest and schemas/, so it never drifts from them.
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from pathlib import Path

import pyarrow.parquet as pq

from flows import schemas
from flows.parquet import column_counts
from flows.stages.rules import catalogue

_CROISSANT_TYPES = {
    "string": "sc:Text", "list<string>": "sc:Text", "int32": "sc:Integer", "int64": "sc:Integer",
    "float64": "sc:Float", "bool": "sc:Boolean", "date": "sc:Date", "timestamp": "sc:DateTime",
}


_DETECTOR_NAMES = {"fasttext": "fastText (lid.176)", "langdetect": "langdetect (seeded)"}


def statistics(folder: Path) -> dict:
    data = folder / "data"
    sources = pq.read_table(data / "sources" / "sources.parquet").to_pylist()
    return {
        "sections": column_counts([data / "sentences" / "sentences.parquet"], "section"),
        "languages": column_counts([data / "sentences" / "sentences.parquet"], "lang"),
        "rules": column_counts([data / "removed" / "removed.parquet"], "rule"),
        "documents_per_source": column_counts([data / "documents" / "documents.parquet"], "source_id"),
        "sources": sources,
        "detectors": sorted(d for d in column_counts([data / "runs" / "runs.parquet"], "lang_detector") if d != "NULL"),
    }


# Characters that make Markdown markup inside a line (HTML is escaped before these are).
_MARKUP = re.compile(r"([\\`*\[\]|#~])")


def md(value) -> str:
    """Text from the data, safe in one Markdown line or table cell: one line, HTML escaped,
    markup characters backslash-escaped; a title can neither break a table, start a heading
    nor carry active HTML onto a page that renders the card."""
    return _MARKUP.sub(r"\\\1", html.escape(" ".join(str(value).split()), quote=False))


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(md(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


# Hugging Face's size categories (number of rows of the default table), smallest first.
_SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
DEFAULT_CONFIG = "sentences"


def size_category(rows: int) -> str:
    return next((name for bound, name in _SIZE_CATEGORIES if rows < bound), "n>1B")


def front_matter(manifest: dict, stats: dict, tables: list[str]) -> list[str]:
    """The card's YAML metadata block, as the Hugging Face hub and `datasets.load_dataset`
    read it: one config per table (`load_dataset(folder, "documents")`), sentences the
    default. Values from the data are JSON strings, which YAML reads as they are."""
    languages = sorted(lang for lang in stats["languages"] if lang != "NULL")
    lines = [
        "---",
        f"pretty_name: {json.dumps('Sentence corpus ' + manifest['version'])}",
        "license: other",
        "license_name: publishers-copyright",
        "language:", *(f"- {json.dumps(lang)}" for lang in languages),
        "size_categories:", f"- {size_category(manifest['row_counts'][DEFAULT_CONFIG])}",
        "task_categories:", "- text-classification", "- text-generation",
        "tags:", "- sentences", "- web-text", "- boilerplate-removal", "- ducklake",
        "configs:",
    ]
    for table in tables:
        lines += [f"- config_name: {table}", "  data_files:", "  - split: train",
                  f"    path: data/{table}/{table}.parquet"]
        if table == DEFAULT_CONFIG:
            lines.append("  default: true")
    return lines + ["---", ""]


def dataset_card(manifest: dict, stats: dict, chart_files: list[str] = ()) -> str:
    version, counts = manifest["version"], manifest["row_counts"]
    descriptions = dict(catalogue())
    lines = [
        # datasets cannot load an empty Parquet file (its batch size comes from the row groups).
        *front_matter(manifest, stats, [t for t, n in counts.items() if n]),
        f"# Sentence corpus, release {version}",
        "",
        "Sentence-level research dataset built from scraped web documents (articles, magazine",
        "pieces, blog posts and their reader comments) by corpus-pipeline "
        f"{manifest['code_version']}: snapshot {manifest['snapshot_id']} of the warehouse "
        f"({manifest['snapshot_time']}), schema version {manifest['schema_version']}.",
        "",
        "## What is in it",
        "",
        *_table(["table", "rows"], [[t, n] for t, n in counts.items()]),
        "Each sentence's `text` is exactly `substr(documents.clean_text, char_start + 1,",
        "char_end - char_start)` (0-based, end-exclusive offsets in Unicode code points).",
        "",
        "## Sources",
        "",
        *_table(["source_id", "name", "kind", "documents", "notes"],
                [[s["source_id"], s["name"] or "", s["kind"] or "",
                  stats["documents_per_source"].get(s["source_id"], 0), s["notes"] or ""]
                 for s in stats["sources"]]),
        "## Collection and cleaning",
        "",
        "Raw files are read by format (plain text; HTML pages, whose main text and comments",
        "trafilatura extracts; JSON Lines, one document per line; WARC archives, one per HTML",
        "response; gzip transparently: see `files`), decoded (UTF-8, else a declared or detected",
        "legacy encoding; ambiguous files are rejected, see `rejects`), repaired with ftfy",
        "(encoding only; typography kept) and",
        "normalised (NFC, odd spaces, invisible and control characters). Lines are classified",
        "into title, standfirst, heading, body, list item, quote, caption and comment (with its",
        "author), or removed by a named rule: every removed line is a row of `removed`, every",
        "text change a row of `edits`. Sentences are split by nupunkt where blingfire agrees,",
        "syntok where they disagree; languages by "
        + (" and ".join(_DETECTOR_NAMES.get(d, d) for d in stats["detectors"]) or "fastText (lid.176)")
        + " (the runs table's `lang_detector`),",
        "inherited from block and document unless a text is long enough and confidently different.",
        "",
        "Lines removed, by rule:",
        "",
        *_table(["rule", "lines", "what it removes"],
                [[r, n, descriptions.get(r, "")] for r, n in stats["rules"].most_common()]),
        "## Statistics",
        "",
        *_table(["section", "sentences"], [[k, n] for k, n in stats["sections"].most_common()]),
        *_table(["language", "sentences"], [[k, n] for k, n in stats["languages"].most_common()]),
        *_charts(chart_files),
        "## Schema",
        "",
        schemas.markdown_reference(),
        "## Known limitations",
        "",
        "- Cleaning rules were written from a small sample; sites with other chrome will leave",
        "  some of it in the text (query `removed` to see what was taken out, and why).",
        "- Languages of short sentences are inherited, not detected; sentences without letters",
        "  have no language.",
        "- Sources are described only as far as the scrape shows; URLs are given only when known.",
        "- A page read more than once is several documents (`doc_id`, the key) with one",
        "  `page_id`: count pages `WHERE is_latest`; identical texts are flagged in",
        "  `duplicate_of`, not removed. Every table joins to documents on `doc_id`.",
        "- For HTML, what trafilatura leaves out (navigation, sidebars) is not audited line by",
        "  line in `removed`; comment authors of HTML pages are not known.",
        "- Licence (`license: other` in the metadata above): the texts' licence is not known;",
        "  copyright stays with their publishers. Check before redistributing.",
        "",
        "## How to load it",
        "",
        "DuckDB (local folder, or over HTTP with the file URLs of manifest.json):",
        "",
        "```sql",
        "SELECT section, count(*) FROM 'data/sentences/sentences.parquet' GROUP BY section;",
        "```",
        "",
        "pandas:",
        "",
        "```python",
        "import pandas as pd",
        'sentences = pd.read_parquet("data/sentences/sentences.parquet")',
        "```",
        "",
        "Hugging Face datasets (one configuration per table, `sentences` the default):",
        "",
        "```python",
        "from datasets import load_dataset",
        'sentences = load_dataset("path/to/this/folder", "sentences", split="train")',
        'documents = load_dataset("path/to/this/folder", "documents", split="train")',
        "```",
        *([f"Tables without rows in this release have no configuration (`datasets` cannot load an "
           f"empty Parquet file): {', '.join(f'`{t}`' for t, n in counts.items() if not n)}.", ""]
          if not all(counts.values()) else []),
        "",
        "polars:",
        "",
        "```python",
        "import polars as pl",
        'documents = pl.read_parquet("data/documents/documents.parquet")',
        "```",
        "",
        "Check the files with `sha256sum -c SHA256SUMS` (or `corpus verify .`).",
        "",
    ]
    return "\n".join(lines)


def _charts(chart_files: list[str]) -> list[str]:
    if not chart_files:
        return []
    from flows.release.charts import CHARTS

    lines = ["## Charts", ""]
    for path in chart_files:
        lines += [f"![{CHARTS[Path(path).stem][0]}]({path})", ""]
    return lines


def changelog(manifest: dict, previous: dict | None, changes: dict[str, list]) -> str:
    version = manifest["version"]
    if previous is None:
        body = [f"First release: snapshot {manifest['snapshot_id']}.", ""]
        body += [f"- {kind}: {len(rows)}" for kind, rows in changes.items() if kind.endswith("added")]
    else:
        body = [f"Changes since {previous['version']} (snapshot {previous['snapshot_id']} -> "
                f"{manifest['snapshot_id']}):", ""]
        body += [f"- {kind}: {len(rows)}" for kind, rows in changes.items()]
        if previous["schema_version"] != manifest["schema_version"]:
            body.append(f"- schema: {previous['schema_version']} -> {manifest['schema_version']}")
        changed = [detail for kind, rows in changes.items() if kind.startswith("documents")
                   for _, detail in rows][:50]
        if changed:
            body += ["", "Documents added, removed or changed (first 50):", ""]
            body += [f"- {md(path)}" for path in changed]
    return "\n".join([f"# Changelog: {version}", "", *body, ""])


@cache
def _context() -> dict:
    return json.loads(Path(__file__).with_name("croissant_context.json").read_text(encoding="utf-8"))


def croissant(manifest: dict) -> dict:
    """Croissant 1.0 metadata: one FileObject and one RecordSet per table."""
    version = manifest["version"]
    distribution, record_sets = [], []
    for table in manifest["row_counts"]:
        file_id = f"{table}.parquet"
        entry = next(f for f in manifest["files"] if f["path"] == f"data/{table}/{table}.parquet")
        distribution.append({
            "@type": "cr:FileObject", "@id": file_id, "name": file_id,
            "contentUrl": entry["path"], "encodingFormat": "application/x-parquet",
            "sha256": entry["sha256"],
        })
        contract = schemas.table(table)
        record_sets.append({
            "@type": "cr:RecordSet", "@id": table, "name": table, "description": contract.description,
            "field": [
                {"@type": "cr:Field", "@id": f"{table}/{c.name}", "name": c.name,
                 "description": c.description, "dataType": _CROISSANT_TYPES[c.type],
                 "source": {"fileObject": {"@id": file_id}, "extract": {"column": c.name}}}
                for c in contract.columns
            ],
        })
    return {
        "@context": _context(),
        "@type": "sc:Dataset",
        "name": f"sentence-corpus-{version}",
        "description": ("Sentence-level research dataset from scraped web documents, with exact "
                        "offsets, sections, comment authors, languages and an audit of cleaning."),
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "version": version,
        "datePublished": manifest["snapshot_time"][:10],
        "citeAs": f"Sentence corpus, release {version} (snapshot {manifest['snapshot_id']}).",
        "url": "README.md",
        "license": "Copyright in the source texts stays with their publishers; see README.md.",
        "distribution": distribution,
        "recordSet": record_sets,
    }
