"""corpus-pipeline: scraped web documents in, a versioned sentence-level dataset out.

Stages (ingest, clean, segment, language) are pure functions over plain records; `pipeline`
composes them per document and per shard; `warehouse` is the only module that talks to
DuckDB/DuckLake; `build` holds the Prefect flow; `cli` is the `corpus` command.
"""

__version__ = "0.1.0"
