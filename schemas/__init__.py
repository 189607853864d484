"""The tables' contracts, one TOML file per table plus dataset.toml (the schema version).

Installed as the package `flows.contracts` (pyproject.toml maps this folder there), so an
installed `corpus` reads the same files; `flows.schemas` loads them.
"""
