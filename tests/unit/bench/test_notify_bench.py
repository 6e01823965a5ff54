"""The notifier bench's floor sends what the notifier would: one signed delivery per
transition record the bench produces (it broke once when transitions became typed records)."""

from __future__ import annotations

from bench.notify_bench import plain_deliveries, transitions


def test_the_floor_builds_one_delivery_per_bench_transition() -> None:
    ds = plain_deliveries("http://127.0.0.1:9/hooks", transitions(3, "run"))
    assert [d.external_id for d in ds] == ["run-0", "run-1", "run-2"]
    assert len({d.webhook_id for d in ds}) == 3
