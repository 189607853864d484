"""corpus-pipeline: scraped web documents in, a versioned sentence-level dataset out.

The layers, each a sub-package (tests/test_layers.py keeps them apart):

- `stages`: pure functions over plain records (ingest, decode, repair, clean, segment, language);
- `run`: the Prefect flow over shards of documents, its executors and its planning;
- `warehouse`: the only code that opens DuckDB connections (DuckLake catalog, publish, search);
- `release`: standalone, checksummed release folders and their dataset card;
- `interface`: the `corpus` command and the researcher's desk; nothing imports it.

Modules directly in this package (`schemas`, `faults`, `parquet`) are shared by all of them.
"""

__version__ = "0.1.0"
