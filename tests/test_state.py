import pyarrow as pa
import pyarrow.parquet as pq

from flows.warehouse import state
from flows.run.planning import load_repeats
from flows.warehouse import Warehouse


def test_a_line_in_enough_distinct_texts_of_one_source_is_a_repeat_counted_under_its_own_cap(tmp_path, monkeypatch):
    fingerprints = tmp_path / "lines.parquet"
    pq.write_table(pa.table({
        "version_id": ["v1", "v2", "v3", "v4", "v5", "v6"],
        "source_id": ["a", "a", "a", "b", "b", "b"],
        # b's third copy of line 7 is a duplicate text: duplicate documents count once
        "text_sha256": ["t1", "t2", "t3", "t4", "t5", "t5"],
        "line_hash": [7, 7, 7, 7, 7, 7],
    }), fingerprints)
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
