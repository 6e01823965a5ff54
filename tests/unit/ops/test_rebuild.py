"""``ops.rebuild``'s own bookkeeping and fold, without Kafka or a database."""

from __future__ import annotations

import itertools

import pytest

from ops import rebuild


def test_each_phase_adds_up_its_wall_seconds_even_when_it_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = itertools.count(step=0.5)
    monkeypatch.setattr(rebuild.time, "perf_counter", lambda: next(ticks))
    report = rebuild.Report()
    with rebuild._timed(report, "compare"):
        pass
    with pytest.raises(RuntimeError), rebuild._timed(report, "compare"):
        raise RuntimeError("ClickHouse unreachable")
    with rebuild._timed(report, "read"):
        next(ticks)
    assert report.seconds == {"compare": 1.0, "read": 1.0}
