"""Shell: the official DuckDB command line on the warehouse.

Takes a warehouse (and optionally a snapshot); gives the init script that loads the extensions
from their wheels, attaches the lake read-only and makes every table a view of the same name,
and runs the `duckdb` program of the duckdb-cli package (same version as the library, so the
same extension binaries load) with it. Read-only: it works while a run is writing, and sees the
last committed snapshot when it starts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from flows import schemas
from flows.warehouse import LAKE, Warehouse, WarehouseError, check_snapshot, extension_path, quote
from flows.warehouse.migrate import outdated


def init_script(wh: Warehouse, at: int | None = None) -> str:
    with wh.connect(read_only=True) as con:  # a clear error for a missing warehouse or snapshot
        if at is not None:
            check_snapshot(con, at)
        if warning := outdated(con):
            print(warning, file=sys.stderr)
    lines = [
        f"-- corpus shell: warehouse {wh.root.resolve()}, read-only"
        + (f", as of snapshot {at}" if at is not None else ", latest snapshot when opened"),
        "-- Run it yourself with: duckdb -init THIS_FILE",
        "SET autoinstall_known_extensions = false;",
        "SET autoload_known_extensions = false;",
        *(f"LOAD {quote(str(extension_path(name)))};" for name in wh.extensions()),
        wh.attach_statement(read_only=True, snapshot=at) + ";",
        *(f"CREATE VIEW {table} AS FROM {LAKE}.{table};" for table in schemas.tables()),
    ]
    return "\n".join(lines) + "\n"


def duckdb_program() -> str:
    """The duckdb-cli package's `duckdb`, next to this Python (the one of the same version)."""
    found = shutil.which("duckdb", path=str(Path(sys.executable).parent))
    if found is None:
        raise WarehouseError("the duckdb program is missing: install the duckdb-cli package "
                             "(pip install -c constraints.txt -e .)")
    return found


def run_shell(wh: Warehouse, at: int | None, arguments: list[str]) -> int:
    """Run the DuckDB CLI with the init script (standard input, output and error are the
    caller's: interactive at a terminal, or a piped script). Its exit status."""
    script = init_script(wh, at)
    with tempfile.TemporaryDirectory(prefix="corpus-shell-") as folder:
        init = Path(folder) / "init.sql"
        init.write_text(script)
        return subprocess.run([duckdb_program(), "-init", str(init), *arguments]).returncode
