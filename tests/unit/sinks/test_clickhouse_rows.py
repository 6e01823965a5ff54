"""Pure parts of the ClickHouse sink."""

from __future__ import annotations

from sinks.clickhouse import MAX_PARAM_BYTES, _chunks


def test_id_lookups_are_chunked_under_the_parameter_limit() -> None:
    keys = [f"coinbase:evt-{i:012d}-{'x' * 20}" for i in range(10_000)]
    chunks = _chunks(keys)
    assert [k for c in chunks for k in c] == keys
    assert len(chunks) > 1
    assert all(sum(len(k) + 4 for k in c) <= MAX_PARAM_BYTES for c in chunks)
    assert _chunks([]) == []
