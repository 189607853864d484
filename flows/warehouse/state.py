"""State: what the warehouse already holds, as a run's planner needs it.

Takes a connection (or a warehouse) and the run's collection; gives the stored file state,
the stored inventory rejects and the cross-document repeated lines, all within the collection
(or the whole warehouse), and refuses a run that would mix whole-folder and collection writes.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from flows.stages.rules import rules
from flows.warehouse.catalog import Warehouse, WarehouseError, existing_tables, quote, temp_list


def in_collection(collection: str | None, column: str = "raw_path") -> str:
    """SQL condition: the row's raw file belongs to `collection` (None: the whole warehouse)."""
    return f"starts_with({column}, {quote(collection + '/')})" if collection else "true"


def check_collection_use(con: duckdb.DuckDBPyConnection, collection: str | None) -> None:
    """A warehouse is written either whole (one raw folder) or by collections: a whole-folder
    run would take the collections' files for deleted ones, and the other way round."""
    if "runs" not in existing_tables(con):
        return
    try:
        used = {row[0] for row in con.execute("SELECT DISTINCT collection FROM runs").fetchall()}
    except duckdb.BinderException:  # a warehouse of an older schema: publish says how to migrate
        return
    if collection is None and used - {None}:
        names = ", ".join(sorted(used - {None}))
        raise WarehouseError(f"this warehouse is written by collections ({names}): run with --collection NAME")
    if collection is not None and None in used:
        raise WarehouseError("this warehouse is written from one raw folder without --collection: "
                             "collections need a warehouse of their own")


def inventory_rejects(
    con: duckdb.DuckDBPyConnection, files_found: str, collection: str | None = None
) -> set[tuple[str, str, str]]:
    """Stored rejects of the collection that are not about a file in the raw folder (sidecar,
    unreadable files); `files_found` is a relation (SQL) with the raw_path of every file found."""
    if "rejects" not in existing_tables(con):
        return set()
    rows = con.execute(f"SELECT raw_path, error_kind, message FROM rejects WHERE {in_collection(collection)} "
                       f"AND raw_path NOT IN (SELECT raw_path FROM {files_found})").fetchall()
    return {tuple(r) for r in rows}


def known_files(con: duckdb.DuckDBPyConnection, name: str, collection: str | None = None,
                exclude: list[str] = ()) -> None:
    """A temporary table `name` (raw_path, raw_sha256, pipeline_version) of every file read (the
    files table), in the collection or the whole warehouse, but those in `exclude`."""
    temp_list(con, f"{name}_excluded", "raw_path", list(exclude))
    if "files" in existing_tables(con):
        con.execute(f"CREATE TEMP TABLE {name} AS SELECT raw_path, raw_sha256, pipeline_version FROM files "
                    f"WHERE {in_collection(collection)} AND raw_path NOT IN (SELECT raw_path FROM {name}_excluded)")
    else:
        con.execute(f"CREATE TEMP TABLE {name} (raw_path VARCHAR, raw_sha256 VARCHAR, pipeline_version VARCHAR)")


# DuckDB's memory for repeat planning, below the run's MEMORY_LIMIT: it holds a hash of every
# line of the corpus and spills what does not fit, which costs no measurable time (the
# fingerprint stage of python benchmarks/bench.py).
REPEATS_MEMORY_LIMIT = "100MB"


def _near_duplicate_clusters(con: duckdb.DuckDBPyConnection, index: str, out: str, bands: int, rows: int) -> None:
    """Create temp table `out` (doc_id, cluster): documents of `index` (a relation of
    line_index rows) that share a MinHash band of their line hashes with one another, directly
    or through others of the same source, get one cluster, the least doc_id among them."""
    con.execute(f"""CREATE TEMP TABLE {out}_bands AS
        WITH sig AS (SELECT doc_id, source_id, s.i AS seed, min(hash(line_hash, s.i)) AS m
                     FROM (SELECT DISTINCT doc_id, source_id, line_hash FROM {index}), range({bands * rows}) s(i)
                     GROUP BY ALL)
        SELECT doc_id, source_id, hash(seed // {rows}, list(m ORDER BY seed)) AS band
        FROM sig GROUP BY doc_id, source_id, seed // {rows}""")
    con.execute(f"CREATE TEMP TABLE {out} AS SELECT DISTINCT doc_id, doc_id AS cluster FROM {out}_bands")
    for _ in range(16):  # label propagation: each round joins clusters one band further apart
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {out}_next AS
            WITH band_min AS (SELECT source_id, band, min(cluster) AS cluster
                              FROM {out}_bands JOIN {out} USING (doc_id) GROUP BY ALL)
            SELECT b.doc_id, min(m.cluster) AS cluster
            FROM {out}_bands b JOIN band_min m USING (source_id, band) GROUP BY b.doc_id""")
        changed = con.execute(f"SELECT count(*) FROM {out}_next n JOIN {out} o USING (doc_id) "
                              "WHERE n.cluster <> o.cluster").fetchone()[0]
        con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT * FROM {out}_next")
        if not changed:
            break


def repeat_plan(
    wh: Warehouse, fingerprints: list[Path], gone_paths: list[str] | Path, min_docs: int,
    out: Path, collection: str | None = None,
) -> tuple[int, list[str]]:
    """Write to `out` (Parquet: source_id, line_hash, sorted) the lines repeated across a
    source's distinct documents after this run; give their number and the unchanged files whose
    output that changes (they hold a line that starts or stops being a repeat). The repeats
    go to a file, not back to the flow: they grow with the corpus, and each shard's worker
    reads only its own sources' (`planning.load_repeats`).

    `fingerprints` are staged line_index rows of the files about to be processed;
    `gone_paths` are raw files whose documents this run replaces or deletes (or a Parquet file
    of them, see `warehouse.temp_list`). Repeats are counted
    within the collection, so its rows do not depend on when other collections commit.
    Near-duplicate documents (MinHash in rules.toml [structure] near_duplicate_bands x
    near_duplicate_rows, see `_near_duplicate_clusters`) count once: versions of one page do
    not make its own lines repeats.
    """
    with wh.capped_connection(lake=True, limit=REPEATS_MEMORY_LIMIT) as con:
        if not (wh.exists() and "line_index" in existing_tables(con)):
            con.execute("CREATE TEMP TABLE old_index "
                        "(doc_id VARCHAR, source_id VARCHAR, text_sha256 VARCHAR, line_hash BIGINT)")
            con.execute("CREATE TEMP TABLE old_docs (doc_id VARCHAR, raw_path VARCHAR)")
        else:
            con.execute("CREATE TEMP TABLE old_docs AS SELECT doc_id, raw_path FROM documents "
                        f"WHERE {in_collection(collection)}")
            con.execute("CREATE TEMP TABLE old_index AS "
                        "SELECT doc_id, source_id, text_sha256, line_hash FROM line_index"
                        + ("" if collection is None else " WHERE doc_id IN (SELECT doc_id FROM old_docs)"))
        temp_list(con, "gone_paths", "raw_path", gone_paths)
        con.execute("CREATE TEMP TABLE gone AS SELECT doc_id FROM old_docs "
                    "WHERE raw_path IN (SELECT raw_path FROM gone_paths)")
        # Read once: the lines after the run and the lines touched both need them.
        con.execute("CREATE TEMP TABLE fresh AS SELECT doc_id, source_id, text_sha256, line_hash FROM " + (
            f"read_parquet([{', '.join(quote(str(p)) for p in fingerprints)}])" if fingerprints
            else "old_index WHERE false"
        ))
        kept = "SELECT * FROM old_index WHERE doc_id NOT IN (SELECT doc_id FROM gone)"
        con.execute(f"CREATE TEMP TABLE new_index AS {kept} UNION ALL SELECT * FROM fresh")
        structure = rules()["structure"]
        bands, rows = structure["near_duplicate_bands"], structure["near_duplicate_rows"]
        _near_duplicate_clusters(con, "old_index", "old_clusters", bands, rows)
        _near_duplicate_clusters(con, "new_index", "new_clusters", bands, rows)
        repeated = (  # identical and near-duplicate documents count once
            "SELECT source_id, line_hash FROM ({}) i JOIN {} c USING (doc_id) GROUP BY source_id, line_hash "
            f"HAVING count(DISTINCT c.cluster) >= {int(min_docs)}"
        )
        con.execute(f"CREATE TEMP TABLE new_rep AS {repeated.format('SELECT * FROM new_index', 'new_clusters')}")
        # Only the lines of the documents that leave, arrive or change cluster can start or stop
        # being repeats: counted before the run for those alone, not for the whole index again.
        con.execute("CREATE TEMP TABLE touched AS SELECT source_id, line_hash FROM old_index "
                    "WHERE doc_id IN (SELECT doc_id FROM gone) "
                    "OR doc_id IN (SELECT doc_id FROM old_clusters o JOIN new_clusters n USING (doc_id) "
                    "                  WHERE o.cluster <> n.cluster) "
                    "UNION SELECT source_id, line_hash FROM fresh")
        con.execute("CREATE TEMP TABLE old_rep AS " + repeated.format(
            "SELECT * FROM old_index SEMI JOIN touched USING (source_id, line_hash)", "old_clusters"))
        con.execute(f"COPY (SELECT source_id, line_hash FROM new_rep ORDER BY ALL) TO {quote(str(out))} (FORMAT parquet)")
        n_repeats = con.execute("SELECT count(*) FROM new_rep").fetchone()[0]
        affected = con.execute(
            "WITH new_touched AS (SELECT * FROM new_rep SEMI JOIN touched USING (source_id, line_hash)), "
            "flipped AS ((SELECT * FROM new_touched EXCEPT SELECT * FROM old_rep) "
            "UNION (SELECT * FROM old_rep EXCEPT SELECT * FROM new_touched)) "
            "SELECT DISTINCT d.raw_path FROM old_index i JOIN flipped USING (source_id, line_hash) "
            "JOIN old_docs d USING (doc_id) WHERE i.doc_id NOT IN (SELECT doc_id FROM gone) ORDER BY 1"
        ).fetchall()
    return n_repeats, [row[0] for row in affected]
