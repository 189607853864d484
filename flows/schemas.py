"""Table contracts: loads schemas/*.toml and checks data against them.

Takes the TOML files in `schemas/`; gives `TableSchema` objects that can build an Arrow schema,
DuckDB column definitions, and validate an Arrow table (column set, order, types, nullability).
Writers, the warehouse DDL and the docs are all derived from here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

import pyarrow as pa

def _schema_dir():
    """schemas/ beside the package in a source tree (a checkout, or a revision exported on its
    own by benchmarks/compare.py); else the installed package data `flows.contracts`
    (pyproject.toml maps schemas/ there)."""
    beside = Path(__file__).resolve().parent.parent / "schemas"
    if (beside / "dataset.toml").is_file() and (beside / "__init__.py").is_file():
        return beside
    return files("flows.contracts")


SCHEMA_DIR = _schema_dir()

# One small type vocabulary for the contract, mapped to both engines.
_ARROW_TYPES = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "list<string>": pa.list_(pa.string()),
}
_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "list<string>": "VARCHAR[]",
}


class SchemaError(ValueError):
    """Data does not match its table's contract."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    description: str
    values: tuple[str, ...] = ()  # the only values a string column may hold, when the contract lists them


@dataclass(frozen=True)
class TableSchema:
    name: str
    description: str
    columns: tuple[Column, ...]
    sort_by: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, _ARROW_TYPES[c.type], nullable=c.nullable) for c in self.columns]
        )

    def duckdb_columns(self) -> list[tuple[str, str]]:
        return [(c.name, _DUCKDB_TYPES[c.type]) for c in self.columns]

    def to_arrow(self, rows: list[dict]) -> pa.Table:
        """Build a validated Arrow table from row dicts (extra or missing keys are errors)."""
        expected = set(self.column_names)
        for row in rows:
            if set(row) != expected:
                missing, extra = expected - set(row), set(row) - expected
                raise SchemaError(
                    f"{self.name}: row keys differ from schema (missing {sorted(missing)}, "
                    f"extra {sorted(extra)})"
                )
        try:
            table = pa.Table.from_pylist(rows, schema=self.arrow_schema())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaError(f"{self.name}: {exc}") from exc
        self.validate(table)
        return table

    def validate(self, table: pa.Table) -> None:
        """Raise SchemaError unless `table` has exactly this schema's columns, types and nulls."""
        if table.schema.names != self.column_names:
            raise SchemaError(
                f"{self.name}: columns {table.schema.names} != schema {self.column_names}"
            )
        for col in self.columns:
            actual = table.schema.field(col.name).type
            if actual != _ARROW_TYPES[col.type]:
                raise SchemaError(f"{self.name}.{col.name}: type {actual} != {col.type}")
            if not col.nullable and table.column(col.name).null_count:
                raise SchemaError(f"{self.name}.{col.name}: NULL in a non-nullable column")
            if col.values:
                unknown = set(table.column(col.name).drop_null().to_pylist()) - set(col.values)
                if unknown:
                    raise SchemaError(f"{self.name}.{col.name}: values not in the contract: {sorted(unknown)}")


def _load_table(path) -> TableSchema:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    columns = []
    for c in data["columns"]:
        if c["type"] not in _ARROW_TYPES:
            raise SchemaError(f"{path.name}: unknown type {c['type']!r} for column {c['name']}")
        columns.append(Column(c["name"], c["type"], bool(c["nullable"]), c["description"], tuple(c.get("values", ()))))
    return TableSchema(data["table"], data["description"], tuple(columns), tuple(data["sort_by"]))


@cache
def dataset() -> dict:
    return tomllib.loads((SCHEMA_DIR / "dataset.toml").read_text(encoding="utf-8"))


def schema_version() -> str:
    return dataset()["schema_version"]


@cache
def tables() -> dict[str, TableSchema]:
    """All table contracts, in the dataset's table order."""
    return {name: _load_table(SCHEMA_DIR / f"{name}.toml") for name in dataset()["tables"]}


def table(name: str) -> TableSchema:
    return tables()[name]


def markdown_reference() -> str:
    """The table reference of docs/tables.md (and of release dataset cards), from the contracts."""
    lines = [f"Schema version {schema_version()}. Generated from `schemas/` by "
             "`python -m flows.schemas`; a test keeps docs/tables.md in step.", ""]
    for contract in tables().values():
        lines += [f"### `{contract.name}`", "", contract.description, "",
                  "| column | type | null | description |", "| --- | --- | --- | --- |"]
        for c in contract.columns:
            values = f" One of: {', '.join(f'`{v}`' for v in c.values)}." if c.values else ""
            lines.append(f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {c.description}{values} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(markdown_reference(), end="")
