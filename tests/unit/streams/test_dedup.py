"""The dedup decision: ``decide(seen, event_id, now_ms, ttl_ms) -> (is_duplicate, seen')``, pure;
"now" is the receipt time ingest wrote, so a replay decides as the first run did."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.dedup import Seen, decide

DAY = 86_400_000
TTL = 7 * DAY
T = 1_790_000_000_000  # a receipt time, epoch ms


def test_the_first_sighting_is_not_a_duplicate() -> None:
    dup, seen = decide(None, "e1", T, TTL)
    assert not dup
    assert seen == {"e1": T}


def test_an_empty_table_is_like_none() -> None:
    assert decide({}, "e1", T, TTL) == decide(None, "e1", T, TTL)


def test_the_second_sighting_is_a_duplicate() -> None:
    _, seen = decide(None, "e1", T, TTL)
    dup, again = decide(seen, "e1", T + 1000, TTL)
    assert dup
    assert again == {"e1": T}  # a duplicate does not refresh the first sighting


def test_other_event_ids_are_independent() -> None:
    _, seen = decide(None, "e1", T, TTL)
    dup, seen = decide(seen, "e2", T + 5, TTL)
    assert not dup
    assert seen == {"e1": T, "e2": T + 5}
    assert decide(seen, "e1", T + 6, TTL)[0]
    assert decide(seen, "e2", T + 6, TTL)[0]


def test_entries_older_than_the_ttl_are_pruned() -> None:
    seen = {"old": T - TTL - 1, "edge": T - TTL, "young": T - 1}
    dup, kept = decide(seen, "new", T, TTL)
    assert not dup
    assert kept == {"edge": T - TTL, "young": T - 1, "new": T}


def test_after_the_ttl_a_resighting_counts_as_new() -> None:
    _, seen = decide(None, "e1", T, TTL)
    assert decide(seen, "e1", T + TTL, TTL)[0]  # exactly the TTL later: still remembered
    dup, seen = decide(seen, "e1", T + TTL + 1, TTL)
    assert not dup
    assert seen == {"e1": T + TTL + 1}  # and remembered again from now on


def test_the_ttl_is_measured_on_now_ms_not_on_the_wall_clock() -> None:
    """A replay of last year's records decides exactly as the first run did."""
    a_year_ago = T - 365 * DAY
    _, seen = decide(None, "e1", a_year_ago, TTL)
    assert decide(seen, "e1", a_year_ago + DAY, TTL) == (True, {"e1": a_year_ago})


def test_the_input_table_is_not_mutated() -> None:
    seen: Seen = {"old": T - TTL - 1, "e1": T}
    before = dict(seen)
    decide(seen, "e2", T, TTL)
    decide(seen, "e1", T, TTL)
    assert seen == before


def test_the_wall_clock_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clock() -> float:
        raise AssertionError("the dedup decision read the clock")

    for name in ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter"):
        monkeypatch.setattr(time, name, no_clock)
    _, seen = decide(None, "e1", T, TTL)
    assert decide(seen, "e1", T + 1, TTL)[0]


IDS = st.sampled_from(["a", "b", "c", "d"])
SIGHTINGS = st.lists(st.tuples(IDS, st.integers(T - 3 * TTL, T + 3 * TTL)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(sightings=SIGHTINGS, ttl=st.integers(0, 2 * TTL))
def test_same_inputs_same_outputs(sightings: list[tuple[str, int]], ttl: int) -> None:
    """Deciding a sequence of receipts twice, later, gives the same decisions and tables."""

    def replay() -> list[tuple[bool, Seen]]:
        seen: Seen | None = None
        out = []
        for event_id, now_ms in sightings:
            dup, seen = decide(seen, event_id, now_ms, ttl)
            out.append((dup, dict(seen)))
        return out

    first = replay()
    time.sleep(0.001)
    assert replay() == first


@settings(max_examples=200, deadline=None)
@given(
    seen=st.dictionaries(IDS, st.integers(T - 3 * TTL, T + TTL)),
    event_id=IDS,
    now_ms=st.integers(T - TTL, T + TTL),
    ttl=st.integers(0, 2 * TTL),
)
def test_the_decision_matches_its_definition(
    seen: Seen, event_id: str, now_ms: int, ttl: int
) -> None:
    dup, after = decide(seen, event_id, now_ms, ttl)
    alive = {k: v for k, v in seen.items() if v >= now_ms - ttl}
    assert dup == (event_id in alive)
    assert after == (alive if dup else {**alive, event_id: now_ms})
