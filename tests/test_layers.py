"""The package's layers, read from its source: who may import whom, and no import cycles."""

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "flows"

# flows/*.py directly ("base": version, table contracts, fault points, Parquet counts) and the
# sub-packages; each layer may import itself and the layers listed for it.
MAY_IMPORT = {
    "base": {"base"},
    "stages": {"stages"},
    "warehouse": {"base", "stages", "warehouse"},
    "release": {"base", "stages", "warehouse", "release"},
    "run": {"base", "stages", "warehouse", "run"},
    "interface": {"base", "stages", "warehouse", "release", "run", "interface"},
}
ONLY_IN = {"duckdb": "warehouse", "prefect": "run", "prefect_dask": "run"}  # third-party: the one layer that may


def layer(module: str) -> str:
    parts = module.split(".")
    if module == "flows.__main__":
        return "interface"
    if len(parts) >= 2 and parts[1] in MAY_IMPORT:
        return parts[1]
    return "base"


def sources() -> dict[str, str]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path.read_text(encoding="utf-8")
    return found


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(source: str, top_level_only: bool = False) -> list[str]:
    """Modules `source` imports (outside `if TYPE_CHECKING:` blocks), in order."""
    found = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                continue
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:  # a name, or a submodule, of the module
                found.extend(f"{node.module}.{alias.name}" for alias in node.names)
            if top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            visit(ast.iter_child_nodes(node))

    visit(ast.parse(source).body)
    return found


def violations(modules: dict[str, str]) -> list[str]:
    """Every import that breaks a layer rule, as 'module imports name (why)'."""
    problems = []
    for module, source in modules.items():
        mine = layer(module)
        for name in imports(source):
            top = name.split(".")[0]
            if top == "flows":
                target = next((m for m in (name, name.rpartition(".")[0]) if m in modules), None)
                if target is None or target == "flows.contracts":
                    continue
                if layer(target) not in MAY_IMPORT[mine]:
                    problems.append(f"{module} imports {target} ({mine} may not import {layer(target)})")
            elif top in ONLY_IN and ONLY_IN[top] != mine:
                problems.append(f"{module} imports {name} (only {ONLY_IN[top]} may)")
    return sorted(set(problems))


def cycles(modules: dict[str, str]) -> list[list[str]]:
    """Import cycles among the package's modules, through imports run when a module loads."""
    graph = {m: sorted({t for n in imports(s, top_level_only=True) for t in (n, n.rpartition(".")[0])
                        if t in modules and t != m}) for m, s in modules.items()}
    found, state = [], {}

    def walk(node, path):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = "done"

    for module in graph:
        if module not in state:
            walk(module, [module])
    return found


def test_every_import_keeps_to_its_layer():
    assert violations(sources()) == []


def test_the_package_has_no_import_cycle():
    assert cycles(sources()) == []


def test_a_stage_that_imports_duckdb_or_the_run_is_caught():
    modules = sources()
    tampered = dict(modules, **{"flows.stages.segment": modules["flows.stages.segment"] + "\nimport duckdb\n"})
    assert violations(tampered) == ["flows.stages.segment imports duckdb (only warehouse may)"]
    tampered = dict(modules, **{"flows.stages.clean": "from flows.run import shards\n"})
    assert violations(tampered) == ["flows.stages.clean imports flows.run.shards (stages may not import run)"]


def test_nothing_imports_the_interface_and_a_warehouse_import_of_it_is_caught():
    modules = sources()
    tampered = dict(modules, **{"flows.warehouse.state": "from flows.interface.common import fail\n"})
    assert violations(tampered) == [
        "flows.warehouse.state imports flows.interface.common (warehouse may not import interface)"]


def test_a_cycle_is_caught():
    modules = dict(sources(), **{"flows.stages.records": "from flows.stages import clean\n"})
    assert [set(cycle) for cycle in cycles(modules)] == [{"flows.stages.clean", "flows.stages.records"}]


# A measurement in prose: a number with a unit of time, size or ratio, a date, or a commit hash.
FIGURE = re.compile(r"\b\d[\d,.]*\s?(?:s|ms|MB|GB|KB|MiB|GiB|%|x|documents/s|files/s|MB/s)\b"
                    r"|\b20\d\d-\d\d-\d\d\b|\b[0-9a-f]{7,40}\b(?=[ ,;:)])")


def figure_lines(source: str) -> list[str]:
    """Comment and docstring lines of `source` that quote a measurement."""
    found = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
             if t.type == tokenize.COMMENT and FIGURE.search(t.string)]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [line for line in (ast.get_docstring(node, clean=False) or "").splitlines() if FIGURE.search(line)]
    return found


def test_comments_give_reasons_not_measurement_history():
    # Figures live in benchmarks/results/ and docs/performance.md; a comment may name one.
    lines = [line for source in sources().values() for line in figure_lines(source)]
    assert len(lines) <= 15, "\n".join(lines)
    assert figure_lines("x = 1  # took 1.05 s at 1 GB\n") == ["# took 1.05 s at 1 GB"]


def test_every_data_file_of_the_package_is_declared_package_data():
    # A wheel holds only what pyproject.toml declares (scripts/check-wheel installs one).
    import fnmatch
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {name: ROOT / setup.get("package-dir", {}).get(name, name.replace(".", "/")) for name in setup["packages"]}
    undeclared = [
        str(path.relative_to(ROOT))
        for name, folder in folders.items() for path in folder.iterdir()
        if path.is_file() and path.suffix not in (".py", ".pyc")
        and not any(fnmatch.fnmatch(path.name, glob) for glob in setup["package-data"].get(name, []))
    ]
    assert undeclared == []
