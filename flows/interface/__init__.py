"""The `corpus` command and the researcher's desk. Nothing imports this package.

`cli` is the command group and the pipeline commands; `desk` adds shell, search, kwic and
report; `common` holds the options and output helpers both use; `shell` starts the DuckDB
CLI on the warehouse; `cookbook` runs the example queries of `queries.sql`.
"""
