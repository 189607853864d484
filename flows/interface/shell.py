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
from flows.interface import confine
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
        return subprocess.run([duckdb_program(), "-init", str(init), *arguments], preexec_fn=_confinement(wh)).returncode


def _confinement(wh: Warehouse):
    """The shell may write files beneath the current directory and the temporary directory
    (and to its history file), never beneath the warehouse: the lake is attached read-only,
    and the kernel refuses the rest (an ATTACH of the catalog for writing, a COPY onto a data
    file). Without Landlock, say so."""
    if not confine.abi_version():
        print("warning: this kernel has no Landlock: the shell's lake is read-only, but its SQL "
              "could still write files inside the warehouse (ATTACH, COPY)", file=sys.stderr)
        return None
    candidates = [Path.cwd(), Path(tempfile.gettempdir()), Path("/dev"), Path.home() / ".duckdb_history"]
    return confine.deny_writes_except(confine.writable_roots(wh.root, candidates))
