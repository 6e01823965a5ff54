"""A long command's phases: their seconds add up, and the garbage collector rests meanwhile."""

from __future__ import annotations

import gc
import itertools

import pytest

from ops import phases


def test_each_phase_adds_up_its_wall_seconds_even_when_it_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = itertools.count(step=0.5)
    monkeypatch.setattr(phases.time, "perf_counter", lambda: next(ticks))
    seconds: dict[str, float] = {}
    with phases.timed(seconds, "compare"):
        pass
    with pytest.raises(RuntimeError), phases.timed(seconds, "compare"):
        raise RuntimeError("ClickHouse unreachable")
    with phases.timed(seconds, "read"):
        next(ticks)
    assert seconds == {"compare": 1.0, "read": 1.0}


def test_the_garbage_collector_is_paused_during_a_phase_and_only_then() -> None:
    seconds: dict[str, float] = {}
    assert gc.isenabled()
    with phases.timed(seconds, "fold"):
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # a caller that had paused it keeps it paused
    try:
        with phases.timed(seconds, "write"):
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
