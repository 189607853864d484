"""Several writers and readers on one warehouse: collections, commit races, committed-only reads.

The concurrency tests run two real `corpus run` processes against a real PostgreSQL catalog
(skipped without a test server, see conftest.postgres_database); the collection rules and the
retry after a lost commit race are also checked on the embedded catalog.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from flows.warehouse import publish
from flows import warehouse
from flows.stages.records import SourceInfo
from flows.warehouse import Warehouse, WarehouseError
from tests.conftest import ROOT, SAMPLE, corpus
from tests.test_warehouse import _row, _stage

SAMPLE_SENTENCES = 1358
SAMPLE_DOCUMENTS = 11


def _writer(raw: Path, wh: Path, catalog: str, collection: str, tmp: Path, meet: Path) -> subprocess.Popen:
    """`corpus run` in its own process (own Prefect home), held at publish until both writers
    are there: their transactions are open side by side and one must lose the commit race."""
    env = dict(os.environ, PREFECT_HOME=str(tmp / f"prefect-{collection}"),
               CORPUS_FAULT=f"meet:publish:{meet}:2")
    return subprocess.Popen(
        [sys.executable, "-m", "flows", "run", str(raw), "--warehouse", str(wh), "--catalog", catalog,
         "--collection", collection, "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


OBSERVE = ("SELECT (SELECT id FROM lake.current_snapshot()), (SELECT count(*) FROM documents), "
           "(SELECT count(*) FROM sentences), (SELECT count(*) FROM runs)")


def _reader_loop(wh: Warehouse, stop: threading.Event, seen: list) -> None:
    """Read (snapshot, documents, sentences, runs) in one transaction, over and over."""
    while not stop.wait(0.05):
        try:
            con = wh.connect(read_only=True)
        except WarehouseError:  # no catalog yet
            continue
        try:
            con.execute("BEGIN TRANSACTION")
            tables = warehouse.existing_tables(con)
            if {"documents", "sentences", "runs"} <= tables:
                seen.append(con.execute(OBSERVE).fetchone())
            con.execute("COMMIT")
        finally:
            con.close()


@pytest.fixture(scope="module")
def two_writers(tmp_path_factory):
    """Two hosts' raw folders written at once into one PostgreSQL-catalogued warehouse, with a
    reader polling throughout."""
    from tests.conftest import postgres_database

    tmp = tmp_path_factory.mktemp("shared")
    with postgres_database() as url:
        raws = {name: tmp / name for name in ("host-a", "host-b")}
        for raw in raws.values():
            shutil.copytree(SAMPLE, raw)
        wh_dir = tmp / "wh"
        stop, seen = threading.Event(), []
        reader = threading.Thread(target=_reader_loop, args=(Warehouse(wh_dir, url), stop, seen))
        reader.start()
        writers = [_writer(raw, wh_dir, url, name, tmp, tmp / "meet") for name, raw in raws.items()]
        outputs = [w.communicate(timeout=300)[0] for w in writers]
        stop.set()
        reader.join()
        yield Warehouse(wh_dir), [w.returncode for w in writers], outputs, seen


def test_both_writers_commit(two_writers):
    _, codes, outputs, _ = two_writers
    assert codes == [0, 0], outputs
    retried = [o for o in outputs if "another writer committed first; publishing again" in o]
    assert len(retried) == 1, "held at publish together, exactly one writer must lose the race and redo it"


def test_every_document_of_both_folders_is_present_exactly_once(two_writers):
    wh, *_ = two_writers
    _, rows = warehouse.query(wh, "SELECT split_part(raw_path, '/', 1), count(*), count(DISTINCT doc_id) "
                                  "FROM documents GROUP BY 1 ORDER BY 1")
    assert rows == [("host-a", SAMPLE_DOCUMENTS, SAMPLE_DOCUMENTS), ("host-b", SAMPLE_DOCUMENTS, SAMPLE_DOCUMENTS)]
    _, rows = warehouse.query(wh, "SELECT count(*), count(DISTINCT sentence_id) FROM sentences")
    assert rows == [(2 * SAMPLE_SENTENCES, 2 * SAMPLE_SENTENCES)]
    _, rows = warehouse.query(wh, "SELECT count(*) FROM files")
    assert rows == [(16,)]


def test_the_same_page_in_both_collections_has_one_latest_version(two_writers):
    """Version flags are computed by whichever commit came last, over both collections."""
    wh, *_ = two_writers
    _, rows = warehouse.query(wh, "SELECT count(DISTINCT page_id), count(*) FILTER (WHERE is_latest), "
                                  "count(*) FILTER (WHERE duplicate_of IS NULL) FROM documents")
    # 5 text files per collection have no URL (identity = path): 10 documents; the 4 pages known
    # by URL are the same 4 documents in both collections.
    docs, latest, originals = rows[0]
    assert (docs, latest) == (14, 14)
    assert originals == 10  # each of the sample's 10 distinct texts once; every other version is a copy


def test_snapshot_history_is_linear(two_writers):
    wh, *_ = two_writers
    _, runs = warehouse.query(wh, "SELECT base_snapshot_id, snapshot_id, collection FROM runs ORDER BY snapshot_id")
    assert [(base, snap) for base, snap, _ in runs] == [(0, 1), (1, 2)]
    assert sorted(c for *_, c in runs) == ["host-a", "host-b"]
    _, snapshots = warehouse.query(wh, "SELECT snapshot_id FROM lake.snapshots() ORDER BY 1")
    assert [s for (s,) in snapshots] == [0, 1, 2]


def test_readers_only_ever_saw_committed_snapshots(two_writers):
    wh, _, _, seen = two_writers
    assert seen, "the reader never saw the tables"
    committed = {}
    for snapshot in {s[0] for s in seen}:
        _, rows = warehouse.query(wh, OBSERVE.replace("(SELECT id FROM lake.current_snapshot())", str(snapshot))
                                  .replace(" FROM documents", f" FROM documents AT (VERSION => {snapshot})")
                                  .replace(" FROM sentences", f" FROM sentences AT (VERSION => {snapshot})")
                                  .replace(" FROM runs", f" FROM runs AT (VERSION => {snapshot})"))
        committed[snapshot] = rows[0]
    assert {tuple(s) for s in seen} <= set(committed.values())
    for _, documents, sentences, runs in seen:  # each run is all there or not at all
        assert (documents, sentences) == (runs * SAMPLE_DOCUMENTS, runs * SAMPLE_SENTENCES)


def test_commands_find_the_catalog_through_the_folder(two_writers):
    wh, *_ = two_writers
    versions = json.loads(corpus("versions", "--warehouse", str(wh.root), "--format", "json"))
    assert [v["snapshot_id"] for v in versions] == [0, 1, 2]


# --- collections on the embedded catalog -----------------------------------------------------


def test_collections_leave_each_other_alone(tmp_path):
    """A second run of one collection sees the other's files as someone else's, not as deleted."""
    for name in ("a", "b"):
        raw = tmp_path / name
        raw.mkdir()
        (raw / "note.txt").write_text(f"Collection {name} wrote this sentence. And this one.")
    wh = tmp_path / "wh"
    for name in ("a", "b", "a"):
        corpus("run", str(tmp_path / name), "--warehouse", str(wh), "--collection", name, "--workers", "1")
    _, rows = warehouse.query(Warehouse(wh), "SELECT raw_path, count(*) FROM sentences JOIN documents "
                                             "USING (doc_id) GROUP BY 1 ORDER BY 1")
    assert rows == [("a/note.txt", 2), ("b/note.txt", 2)]
    _, runs = warehouse.query(Warehouse(wh), "SELECT collection, n_new, n_unchanged, n_deleted FROM runs ORDER BY snapshot_id")
    assert runs == [("a", 1, 0, 0), ("b", 1, 0, 0), ("a", 0, 1, 0)]


def test_a_whole_folder_run_on_a_collection_warehouse_is_refused(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "note.txt").write_text("One sentence.")
    wh = tmp_path / "wh"
    corpus("run", str(raw), "--warehouse", str(wh), "--collection", "a", "--workers", "1")
    output = corpus("run", str(raw), "--warehouse", str(wh), "--workers", "1", expect=1)
    assert "this warehouse is written by collections (a): run with --collection NAME" in output


class _OtherWriter:
    """Stands in for fault_point: at `publish` (inside this writer's open transaction) another
    writer commits first, `times` times; not again from within its own publish."""

    def __init__(self, wh: Warehouse, staged: dict, times: int) -> None:
        self.wh, self.staged, self.left, self.busy = wh, staged, times, False

    def __call__(self, point: str) -> None:
        if point != "publish" or self.busy or not self.left:
            return
        self.left -= 1
        self.busy = True
        try:
            publish.publish(self.wh, self.staged, [], [SourceInfo("src")], _row(f"theirs-{self.left}"))
        finally:
            self.busy = False


def test_a_lost_commit_race_is_redone_on_the_new_snapshot(tmp_path, monkeypatch, postgres_url):
    """Another writer commits while this publish's transaction is open: the commit fails, and
    the whole transaction is done again on top of the other one (base snapshot included).
    (The embedded SQLite catalog cannot have two writers in a transaction at once: its file lock
    makes the second wait or fail with "database is locked", which the publish task retries.)"""
    wh = Warehouse(tmp_path / "wh", postgres_url)
    mine = _stage(tmp_path, "mine.txt", "My sentence is here. And another.")
    theirs = _stage(tmp_path, "theirs.txt", "Their sentence is here.", shard=2)
    publish.publish(wh, {}, [], [SourceInfo("src")], _row("setup"))
    monkeypatch.setattr(publish, "fault_point", _OtherWriter(wh, theirs, times=1))
    retries = []
    assert publish.publish(wh, mine, [], [SourceInfo("src")], _row("mine"), on_retry=retries.append) == 3
    assert len(retries) == 1 and "another writer committed first" in retries[0]
    _, runs = warehouse.query(wh, "SELECT run_id, base_snapshot_id, snapshot_id FROM runs ORDER BY snapshot_id")
    assert runs == [("setup", 0, 1), ("theirs-0", 1, 2), ("mine", 2, 3)]
    _, rows = warehouse.query(wh, "SELECT raw_path FROM documents ORDER BY 1")
    assert rows == [("mine.txt",), ("theirs.txt",)]


def test_publish_gives_up_with_a_clear_error_when_it_keeps_losing(tmp_path, monkeypatch, postgres_url):
    wh = Warehouse(tmp_path / "wh", postgres_url)
    publish.publish(wh, {}, [], [SourceInfo("src")], _row("setup"))
    monkeypatch.setattr(publish, "fault_point", _OtherWriter(wh, {}, times=2))
    monkeypatch.setattr(publish, "COMMIT_ATTEMPTS", 2)
    monkeypatch.setattr(publish.time, "sleep", lambda seconds: None)
    with pytest.raises(publish.CommitConflict, match="other runs committed first 2 times in a row; nothing was committed"):
        publish.publish(wh, {}, [], [SourceInfo("src")], _row("mine"))
    _, runs = warehouse.query(wh, "SELECT run_id FROM runs ORDER BY snapshot_id")
    assert runs == [("setup",), ("theirs-1",), ("theirs-0",)]


@pytest.mark.parametrize("url, message", [
    ("mysql://host/db", "is not a PostgreSQL URL"),
    ("postgresql://me:secret@host/db", "holds a password"),
])
def test_bad_catalog_urls_are_refused(tmp_path, url, message):
    with pytest.raises(WarehouseError, match=message):
        Warehouse(tmp_path, url)


def test_a_folder_keeps_the_catalog_it_was_made_with(tmp_path):
    (tmp_path / "catalog.url").write_text("postgresql://u@h/one\n")
    assert Warehouse(tmp_path).postgres_url() == "postgresql://u@h/one"
    with pytest.raises(WarehouseError, match="has its catalog at postgresql://u@h/one"):
        Warehouse(tmp_path, "postgresql://u@h/two").postgres_url()
    embedded = tmp_path / "embedded"
    embedded.mkdir()
    (embedded / "catalog.sqlite").touch()
    with pytest.raises(WarehouseError, match="has an embedded catalog"):
        Warehouse(embedded, "postgresql://u@h/one").postgres_url()
