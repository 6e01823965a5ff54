"""The dedup decision: ``decide(seen, event_id, now_ms, ttl_ms) -> (is_duplicate, seen')``, pure;
"now" is the receipt time ingest wrote, so a replay decides as the first run did."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.dedup import Seen, decide

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


@st.composite
def receipts(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Sightings in receipt order (ingest stamps one partition's receipts in order), with
    gaps around the TTL so that ids expire and come back."""
    now, out = T, []
    for _ in range(draw(st.integers(0, 30))):
        now += draw(st.sampled_from([0, 1, DAY, TTL - 1, TTL, TTL + 1, 3 * DAY]))
        out.append((draw(IDS), now))
    return out


@settings(max_examples=300, deadline=None)
@given(sightings=receipts())
def test_a_stream_of_receipts_remembers_each_first_sighting_for_exactly_the_ttl(
    sightings: list[tuple[str, int]],
) -> None:
    """The expectation comes from the history, not from a table: a receipt is a duplicate when
    the same id was last *counted* (not a duplicate itself) at most TTL earlier, and the table
    afterwards holds exactly the ids counted within the last TTL, at the time they were."""
    seen: Seen | None = None
    counted: list[tuple[str, int]] = []  # (id, when) of every receipt that was not a duplicate
    for event_id, now_ms in sightings:
        last = max((t for e, t in counted if e == event_id), default=None)
        expect_dup = last is not None and now_ms - last <= TTL
        dup, seen = decide(seen, event_id, now_ms, TTL)
        assert dup == expect_dup, (event_id, now_ms, counted)
        if not dup:
            counted.append((event_id, now_ms))
        latest = {e: t for e, t in counted}  # later sightings overwrite: the last count
        assert seen == {e: t for e, t in latest.items() if now_ms - t <= TTL}


@pytest.mark.parametrize(
    ("seen", "event_id", "now_ms", "ttl", "expected"),
    [
        # a TTL of zero remembers only what was seen in this very millisecond
        ({"a": T}, "a", T, 0, (True, {"a": T})),
        ({"a": T - 1}, "a", T, 0, (False, {"a": T})),
        # a sighting stamped after "now" (receipts of two partitions interleaved by a replay)
        # is kept and counts, however far ahead
        ({"a": T + DAY}, "a", T, TTL, (True, {"a": T + DAY})),
        ({"a": T + DAY}, "b", T, TTL, (False, {"a": T + DAY, "b": T})),
        # one decision prunes every expired id, the one asked about included
        (
            {"a": T - TTL - 1, "b": T - TTL - 1, "c": T - TTL},
            "a",
            T,
            TTL,
            (False, {"c": T - TTL, "a": T}),
        ),
        # a table of strangers: the first sighting of a new id keeps them all
        ({"x": T - 5, "y": T - 6}, "z", T, TTL, (False, {"x": T - 5, "y": T - 6, "z": T})),
    ],
)
def test_decisions_at_the_edges(
    seen: Seen, event_id: str, now_ms: int, ttl: int, expected: tuple[bool, Seen]
) -> None:
    assert decide(seen, event_id, now_ms, ttl) == expected
