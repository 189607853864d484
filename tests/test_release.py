"""Releases: files, checksums, card, Croissant, version policy, and a real download over HTTP."""

import functools
import http.server
import json
import shutil
import subprocess
import threading

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from flows.release import folder as rel
from flows.interface.cli import main
from flows.warehouse import Warehouse, load_extensions
from tests.conftest import SAMPLE, corpus


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release")
    raw = tmp / "raw"
    raw.mkdir()
    for path in sorted(SAMPLE.glob("00[0-2]*")) + [SAMPLE / "_sources.toml"]:
        (raw / path.name).write_bytes(path.read_bytes())
    wh = tmp / "wh"
    corpus("run", str(raw), "--warehouse", str(wh))
    corpus("release", "1.0.0", "--warehouse", str(wh))
    return tmp, raw, wh, wh / "releases" / "1.0.0"


def fails(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 1, result.output
    return result.output


def test_release_folder_is_complete_and_checkable_with_sha256sum(released):
    *_, folder = released
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["version"] == "1.0.0" and manifest["previous_release"] is None
    assert manifest["row_counts"]["documents"] == 3
    assert {f["path"] for f in manifest["files"]} == {
        *(f"data/{t}/{t}.parquet" for t in rel.RELEASE_TABLES), "README.md", "CHANGELOG.md", "croissant.json",
        *(f"charts/{name}.svg" for name in ("sources", "sentence-lengths", "languages", "removals", "growth")),
    }
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    card = (folder / "README.md").read_text()
    for heading in ["## Sources", "## Collection and cleaning", "## Schema", "## Known limitations", "## How to load it"]:
        assert heading in card
    assert "| `sentence_id` | string | no |" in card and "Socialist Worker" in card
    assert "![Removals per rule](charts/removals.svg)" in card
    assert "Lines removed, by rule" in (folder / "charts" / "removals.svg").read_text()


def test_the_release_charts_are_the_reports_charts(released):
    """Drawn from the released Parquet files, they equal those drawn from the warehouse."""
    from flows.release.charts import charts

    _, _, wh, folder = released
    snapshot = json.loads((folder / "manifest.json").read_text())["snapshot_id"]
    with Warehouse(wh).connect(snapshot=snapshot) as con:
        drawn = charts(con)
    assert all((folder / "charts" / f"{name}.svg").read_text() == svg for name, svg in drawn.items())


def test_hugging_face_datasets_polars_and_pandas_load_every_table_with_the_warehouses_counts(released, tmp_path, monkeypatch):
    """As a researcher loads a downloaded release: `load_dataset(folder, table)` through the
    card's YAML configs (no network, a private cache), polars and pandas from the files."""
    datasets = pytest.importorskip("datasets")
    pl = pytest.importorskip("polars")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, _, wh, folder = released
    manifest = json.loads((folder / "manifest.json").read_text())
    warehouse_counts = {t: json.loads(corpus("sql", "--warehouse", str(wh), "--format", "json",
                                             f"SELECT count(*) AS n FROM {t}"))[0]["n"] for t in rel.RELEASE_TABLES}
    assert manifest["row_counts"] == warehouse_counts
    empty = [t for t, n in warehouse_counts.items() if not n]
    assert empty == ["rejects"]  # named in the card: datasets cannot load an empty Parquet file
    assert "have no configuration (`datasets` cannot load an empty Parquet file): `rejects`." in (folder / "README.md").read_text()
    loaded = {t: datasets.load_dataset(str(folder), t, split="train", cache_dir=str(tmp_path / "hf")).num_rows
              for t in rel.RELEASE_TABLES if t not in empty}
    assert loaded == {t: n for t, n in warehouse_counts.items() if t not in empty}
    assert datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "hf")).num_rows == warehouse_counts["sentences"]
    for t in rel.RELEASE_TABLES:
        path = folder / "data" / t / f"{t}.parquet"
        assert pl.read_parquet(path).height == len(pd.read_parquet(path)) == warehouse_counts[t], t
    sentences = pl.read_parquet(folder / "data" / "sentences" / "sentences.parquet")
    documents = pl.read_parquet(folder / "data" / "documents" / "documents.parquet")
    assert sentences.join(documents, on="doc_id").height == sentences.height


def test_the_card_opens_with_hugging_face_metadata_from_the_data(released):
    *_, folder = released
    card = (folder / "README.md").read_text()
    header = card.split("---\n")[1]
    assert header.startswith('pretty_name: "Sentence corpus 1.0.0"\nlicense: other\n')
    assert '\nlanguage:\n- "en"\n' in header and "\nsize_categories:\n- n<1K\n" in header
    assert ("- config_name: sentences\n  data_files:\n  - split: train\n    path: data/sentences/sentences.parquet\n"
            "  default: true\n") in header
    assert header.count("- config_name: ") == len(rel.RELEASE_TABLES) - 1  # not the empty rejects


def test_croissant_metadata_validates_with_mlcroissant(released):
    mlc = pytest.importorskip("mlcroissant")
    *_, folder = released
    dataset = mlc.Dataset(jsonld=str(folder / "croissant.json"))
    assert not dataset.metadata.issues.errors
    assert [rs.name for rs in dataset.metadata.record_sets] == list(rel.RELEASE_TABLES)


def test_re_exporting_a_snapshot_gives_byte_identical_parquet(released, tmp_path):
    _, _, wh, folder = released
    snapshot = json.loads((folder / "manifest.json").read_text())["snapshot_id"]
    rel.export(Warehouse(wh), snapshot, tmp_path / "again")
    for table in rel.RELEASE_TABLES:
        name = f"data/{table}/{table}.parquet"
        assert rel.sha256_file(tmp_path / "again" / name) == rel.sha256_file(folder / name), table


def test_version_policy_is_enforced(released):
    _, raw, wh, _ = released
    assert "already exists" in fails("release", "1.0.0", "--warehouse", str(wh))
    assert "is already released as 1.0.0" in fails("release", "1.0.1", "--warehouse", str(wh))
    assert "is not MAJOR.MINOR.PATCH" in fails("release", "../../etc", "--warehouse", str(wh))
    (raw / "new.txt").write_text("A new document arrives. It adds sentences.")
    corpus("run", str(raw), "--warehouse", str(wh))
    assert "is not greater than the latest release" in fails("release", "0.9.0", "--warehouse", str(wh))
    assert "need a minor bump" in fails("release", "1.0.1", "--warehouse", str(wh))
    corpus("release", "1.1.0", "--warehouse", str(wh))
    changelog = (wh / "releases" / "1.1.0" / "CHANGELOG.md").read_text()
    assert "- documents added: 1" in changelog and "- new.txt" in changelog
    assert json.loads((wh / "releases" / "1.1.0" / "manifest.json").read_text())["previous_release"] == "1.0.0"


def test_symbolic_links_in_the_release_path_are_one_line_errors(sample_warehouse, tmp_path):
    wh = tmp_path / "wh"
    shutil.copytree(sample_warehouse, wh, ignore=shutil.ignore_patterns("search", "staging", "releases"))
    (wh / "releases").symlink_to(tmp_path / "missing")
    message = fails("release", "1.0.0", "--warehouse", str(wh))
    assert "is a symbolic link to" in message and "which is not a folder" in message
    assert "Traceback" not in message and len(message.strip().splitlines()) == 1
    (wh / "releases").unlink()
    (wh / "releases").mkdir()
    (wh / "releases" / "1.0.0").symlink_to(tmp_path / "missing")
    assert "already exists" in fails("release", "1.0.0", "--warehouse", str(wh))
    assert not (tmp_path / "missing").exists()


@pytest.fixture
def http_base(released):
    *_, folder = released
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the request log out of the CLI output under test
            pass

    handler = functools.partial(Quiet, directory=str(folder.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_release_is_readable_over_http_with_duckdb_and_pandas(released, http_base):
    *_, folder = released
    manifest = json.loads((folder / "manifest.json").read_text())
    url = {f["path"]: f"{http_base}/1.0.0/{f['path']}" for f in manifest["files"]}
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    load_extensions(con, "httpfs")
    (count,) = con.execute(f"SELECT count(*) FROM read_parquet('{url['data/sentences/sentences.parquet']}')").fetchone()
    assert count == manifest["row_counts"]["sentences"]
    bad = con.execute(
        f"SELECT count(*) FROM read_parquet('{url['data/sentences/sentences.parquet']}') s "
        f"JOIN read_parquet('{url['data/documents/documents.parquet']}') d USING (doc_id) "
        "WHERE substr(d.clean_text, s.char_start + 1, s.char_end - s.char_start) <> s.text"
    ).fetchone()[0]
    assert bad == 0
    frame = pd.read_parquet(url["data/documents/documents.parquet"])
    assert len(frame) == manifest["row_counts"]["documents"]


def test_download_verifies_and_a_tampered_file_fails(released, http_base, tmp_path):
    output = corpus("download", http_base, "1.0.0", str(tmp_path))
    assert "downloaded and verified 1.0.0" in output
    copy = tmp_path / "1.0.0"
    assert corpus("verify", str(copy)).endswith("all files match their checksums\n")
    assert corpus("verify", f"{http_base}/1.0.0").endswith("all files match their checksums\n")
    with open(copy / "data" / "sentences" / "sentences.parquet", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00tampered")
    message = fails("verify", str(copy))
    assert "data/sentences/sentences.parquet: checksum mismatch" in message
    assert "already exists" in fails("download", http_base, "1.0.0", str(tmp_path))


def test_sql_at_a_release_version_queries_its_snapshot(released):
    _, _, wh, folder = released
    expected = json.loads((folder / "manifest.json").read_text())["row_counts"]["documents"]
    out = corpus("sql", "--warehouse", str(wh), "--at", "1.0.0", "--format", "csv", "SELECT count(*) AS n FROM documents")
    assert out == f"n\n{expected}\n"
    assert "no release 9.9.9" in fails("sql", "--warehouse", str(wh), "--at", "9.9.9", "SELECT 1")
    assert "--at takes a snapshot number or a release version" in fails(
        "sql", "--warehouse", str(wh), "--at", "../x", "SELECT 1")


def test_text_from_the_data_cannot_inject_markup_into_the_card_or_changelog(tmp_path):
    raw = tmp_path / "raw"
    (raw / "evil").mkdir(parents=True)
    (raw / "evil" / "a.txt").write_text("A first document. It has two sentences.")
    (raw / "_sources.toml").write_text(
        '[sources.evil]\nname = "<img src=x onerror=alert(1)>\\n## Injected heading | cell"\n'
        'notes = "<script>alert(2)</script>"\n')
    wh = tmp_path / "wh"
    corpus("run", str(raw), "--warehouse", str(wh))
    corpus("release", "1.0.0", "--warehouse", str(wh))
    (raw / "evil" / "#b| <i>.txt").write_text("A second document arrives. It is new.")
    corpus("run", str(raw), "--warehouse", str(wh))
    corpus("release", "1.1.0", "--warehouse", str(wh))
    card = (wh / "releases" / "1.1.0" / "README.md").read_text()
    changelog = (wh / "releases" / "1.1.0" / "CHANGELOG.md").read_text()
    (row,) = [line for line in card.splitlines() if line.startswith("| evil |")]
    assert row == ("| evil | &lt;img src=x onerror=alert(1)&gt; \\#\\# Injected heading \\| cell |  | 2 | "
                   "&lt;script&gt;alert(2)&lt;/script&gt; |")
    assert "<img" not in card and "<script" not in card and "\n## Injected" not in card
    assert "- evil/\\#b\\| &lt;i&gt;.txt" in changelog.splitlines() and "<i>" not in changelog
