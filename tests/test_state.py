import pyarrow as pa
import pyarrow.parquet as pq

from flows.warehouse import state
from flows.run.planning import load_repeats
from flows.warehouse import Warehouse


def test_a_line_in_enough_distinct_texts_of_one_source_is_a_repeat_counted_under_its_own_cap(tmp_path, monkeypatch):
    fingerprints = tmp_path / "lines.parquet"
    docs = [("v1", "a", "t1"), ("v2", "a", "t2"), ("v3", "a", "t3"), ("v4", "b", "t4"), ("v5", "b", "t5"),
            ("v6", "b", "t5")]  # b's third copy of line 7 is a duplicate text: duplicate documents count once
    rows = [(v, s, t, h) for n, (v, s, t) in enumerate(docs)
            for h in [7, *range(100 * (n if v != "v6" else 4), 100 * (n if v != "v6" else 4) + 5)]]
    pq.write_table(pa.table(dict(zip(["doc_id", "source_id", "text_sha256", "line_hash"],
                                     map(list, zip(*rows))))), fingerprints)
    limits = []
    bound_memory = Warehouse.bound_memory
    monkeypatch.setattr(Warehouse, "bound_memory",
                        lambda self, con, spill_in=None, limit="": limits.append(limit) or bound_memory(self, con, spill_in, limit))

    out = tmp_path / "repeats.parquet"
    n_repeats, affected = state.repeat_plan(Warehouse(tmp_path / "wh"), [fingerprints], [], 3, out)

    assert (n_repeats, affected) == (1, [])
    assert pq.read_table(out).to_pylist() == [{"source_id": "a", "line_hash": 7}]
    assert load_repeats(out, ["a", "b"]) == {"a": frozenset({7})}
    assert load_repeats(out, ["b"]) == load_repeats(out, []) == {}
    assert limits == [state.REPEATS_MEMORY_LIMIT]


def test_versions_of_one_page_count_once_and_a_shared_footer_still_counts(tmp_path):
    article = list(range(1000, 1020))  # the same 20 lines in every version
    rows = [(f"version{n}", "news", f"t{n}", h) for n in range(3) for h in [*article, 2000 + n]]  # + "Updated N"
    rows += [(f"other{n}", "news", f"o{n}", h) for n in range(2) for h in [3000 + 10 * n, 3001 + 10 * n, 99]]
    rows += [("version0", "news", "t0", 99)]  # the footer is on one version and on both other pages
    fingerprints = tmp_path / "lines.parquet"
    pq.write_table(pa.table(dict(zip(["doc_id", "source_id", "text_sha256", "line_hash"],
                                     map(list, zip(*rows))))), fingerprints)
    out = tmp_path / "repeats.parquet"
    assert state.repeat_plan(Warehouse(tmp_path / "wh"), [fingerprints], [], 3, out) == (1, [])
    assert pq.read_table(out).to_pylist() == [{"source_id": "news", "line_hash": 99}]
