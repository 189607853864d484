"""Upgrades: a warehouse written under an older major schema brought to the current one.

Takes a warehouse; gives a one-line account of what it changed (None when it was current), the
whole upgrade committed as one DuckLake snapshot, so a warehouse is never half old. Upgrades
rename columns in place: no data file is rewritten, and earlier snapshots keep their own
column names for time travel.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from flows import schemas
from flows.warehouse.catalog import LAKE, Warehouse, WarehouseError, existing_tables


@dataclass(frozen=True)
class Upgrade:
    """Schema `from_major`.x to the next major: applies when `marker` (table, column) exists;
    `renames` run in order (table, old name, new name)."""

    from_major: int
    marker: tuple[str, str]
    renames: tuple[tuple[str, str, str], ...]


# Schema 3 gives documents a unique key under the name every other table refers to it by: the
# page identity (2.x doc_id) becomes page_id, then the row key (2.x version_id) becomes doc_id.
UPGRADES = (
    Upgrade(2, ("documents", "version_id"), (
        ("documents", "doc_id", "page_id"), ("documents", "version_id", "doc_id"),
        ("sentences", "doc_id", "page_id"), ("sentences", "version_id", "doc_id"),
        ("removed", "doc_id", "page_id"), ("removed", "version_id", "doc_id"),
        ("edits", "doc_id", "page_id"), ("edits", "version_id", "doc_id"),
        ("line_index", "version_id", "doc_id"),
    )),
)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {row[0] for row in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ?", [LAKE, table]
    ).fetchall()}


def pending(con: duckdb.DuckDBPyConnection) -> list[Upgrade]:
    """The upgrades this warehouse (a lake connection) needs, oldest first."""
    tables = existing_tables(con)
    return [u for u in UPGRADES if u.marker[0] in tables and u.marker[1] in _columns(con, u.marker[0])]


def upgrade(wh: Warehouse) -> str | None:
    """Bring `wh` to the current schema in one transaction; say what changed, or None."""
    if not wh.exists():
        return None
    con = wh.connect(read_only=False)
    try:
        todo = pending(con)
        if not todo:
            return None
        tables = existing_tables(con)
        con.execute("BEGIN TRANSACTION")
        for step in todo:
            for table, old, new in step.renames:
                if table in tables:
                    con.execute(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
        current = schemas.schema_version()
        con.execute(f"CALL {LAKE}.set_commit_message('corpus', ?)", [f"upgrade to schema {current}"])
        con.execute("COMMIT")
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot upgrade warehouse {wh.root} to schema {schemas.schema_version()} "
                             f"(it is unchanged): {exc}") from exc
    finally:
        con.close()
    renamed = "; ".join(f"{t}.{o} -> {n}" for step in todo for t, o, n in step.renames if t in tables)
    return (f"upgraded warehouse {wh.root} from schema {todo[0].from_major}.x to {current} "
            f"in one snapshot: renamed {renamed}")


def outdated(con: duckdb.DuckDBPyConnection) -> str | None:
    """A warning for readers of a warehouse (a lake connection) that still needs an upgrade:
    its column names are not the documented ones."""
    todo = pending(con)
    if not todo:
        return None
    return (f"warning: this warehouse has schema {todo[0].from_major}.x, not {schemas.schema_version()}: "
            f"its columns are not the documented ones until `corpus run` upgrades it")
