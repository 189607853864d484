"""The warehouse: the only package that opens DuckDB connections or knows DuckLake's SQL.

`catalog` attaches the DuckLake catalog (SQLite or PostgreSQL) and answers queries; `migrate`
upgrades an older schema's warehouse; `state`
reads what the planner needs; `publish` commits a run in one transaction; `search_index` and
`search` keep and query the full-text index. Switching the catalog touches only this package.
The names below are its public surface for the run, the release and the interface.
"""

from flows.warehouse.catalog import (
    LAKE,
    MEMORY_LIMIT,
    Warehouse,
    WarehouseError,
    check_collection,
    check_snapshot,
    current_snapshot,
    diff,
    existing_tables,
    export_batches,
    extension_path,
    latest_snapshot,
    load_extensions,
    parquet_connection,
    check_read_only,
    query,
    query_to_file,
    quote,
    snapshot_time,
    snapshots,
    temp_list,
)

__all__ = [
    "LAKE", "MEMORY_LIMIT", "Warehouse", "WarehouseError", "check_collection", "check_read_only", "check_snapshot",
    "current_snapshot", "diff", "existing_tables", "export_batches", "extension_path", "latest_snapshot",
    "load_extensions", "parquet_connection", "query", "query_to_file", "quote", "snapshot_time", "snapshots",
    "temp_list",
]
