"""The payment status state machine, as a specification: ``apply(state, event)`` and
``register_checkout(state, checkout)`` are pure, and the state is a fold of the set of distinct
events in the order (provider timestamp, status rank, event id)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import StateLimit
from domain.machine import MAX_EVENTS, MAX_REGISTRATIONS, apply, register_checkout, restate
from domain.model import Status
from domain.records import (
    Checkout,
    Entry,
    PaymentEvent,
    Snapshot,
    Transition,
    TxState,
    decode_entry,
    encode,
)
from testing.traffic import SCENARIOS
from tests.unit.domain.origins import converged, without_origins

S = Status
T0 = datetime(2026, 9, 21, 12, 0, tzinfo=UTC)
PAID = (S.PENDING, S.CONFIRMED, S.COMPLETED, S.UNDERPAID, S.OVERPAID)
ADR = Path(__file__).resolve().parents[3] / "docs" / "decisions" / "0001-state-machine.md"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(
    status: Status | str,
    t: float = 0,
    event_id: str | None = None,
    *,
    amount: str | None = None,
    currency: str | None = "USDC",
    received: float | None = None,
    order_id: str | None = None,
) -> PaymentEvent:
    s = Status(status)
    return PaymentEvent(
        event_id=event_id or f"coinbase:evt-{s.value}-{t}",
        provider="coinbase",
        external_id="ch_1",
        status=s,
        occurred_at=at(t),
        provider_status=s.value,
        amount=None if amount is None else Decimal(amount),
        currency=currency if amount is not None else None,
        order_id=order_id,
        received_at=None if received is None else at(received),
        raw_id="" if received is None else f"raw-{event_id or s.value}-{received}",
    )


def checkout(amount: str = "12.50", currency: str = "USDC", t: float = -60) -> Checkout:
    return Checkout("coinbase", "ch_1", "order-42", Decimal(amount), currency, at(t))


def run(*events: PaymentEvent, state: TxState | None = None) -> TxState:
    for e in events:
        state, _ = apply(state, e)
    assert state is not None
    return state


def chain(*statuses: Status | str) -> list[PaymentEvent]:
    return [event(s, 60 * k) for k, s in enumerate(statuses)]


# ---- in-order chains ----------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids="-".join)
def test_an_in_order_chain_ends_in_its_last_status(scenario: tuple[str, ...]) -> None:
    state = run(*chain(*scenario))
    assert state.status == Status(scenario[-1])
    assert [a.applied for a in state.events] == [True] * len(scenario)
    assert [a.note for a in state.events] == [""] * len(scenario)
    assert state.version == len(scenario)
    assert not state.late


@pytest.mark.parametrize("scenario", SCENARIOS, ids="-".join)
def test_a_chain_with_equal_timestamps_is_ordered_by_status_rank(
    scenario: tuple[str, ...],
) -> None:
    """Providers stamp whole seconds: several stages in one second still end in the last one."""
    same_second = [event(s, 0) for s in scenario]
    assert run(*reversed(same_second)).status == Status(scenario[-1])


def test_a_fresh_transaction_starts_in_new() -> None:
    state, [effect] = apply(None, event(S.PENDING))
    assert (effect.from_status, effect.to_status, effect.version) == (S.NEW, S.PENDING, 1)
    assert (state.provider, state.external_id) == ("coinbase", "ch_1")


def test_a_self_transition_is_applied_and_changes_only_the_version() -> None:
    first = run(event(S.PENDING, 0))
    second = run(event(S.PENDING, 10), state=first)
    assert second.status is S.PENDING
    assert second.events[-1].applied
    assert second.version == first.version + 1


# ---- impossible transitions ---------------------------------------------------------------

#: where a payment may go next, written out from the domain (decision 0001), not read from
#: the code's table: changing domain.machine.ALLOWED makes these tests fail
NEXT = {
    "new": "pending confirmed completed underpaid overpaid expired failed refunded canceled",
    "pending": "confirmed completed underpaid overpaid expired failed canceled",
    "underpaid": "pending confirmed completed overpaid expired failed refunded canceled",
    "confirmed": "completed underpaid overpaid failed refunded",
    "overpaid": "completed refunded",
    "completed": "overpaid refunded",
    "expired": "pending confirmed completed underpaid overpaid failed canceled",  # late payments
    "failed": "completed refunded",
    "canceled": "refunded",
    "refunded": "",  # final
}
POSSIBLE = [(S(a), S(b)) for a, nexts in NEXT.items() for b in nexts.split()]
IMPOSSIBLE = [
    (a, b)
    for a in Status
    for b in Status
    if a is not S.NEW and b is not a and (a, b) not in set(POSSIBLE)
]


def test_the_expected_table_names_every_status() -> None:
    assert set(NEXT) == {s.value for s in Status}
    assert all(a is not b for a, b in POSSIBLE)
    assert len(POSSIBLE) + len(IMPOSSIBLE) == 10 * 9  # every ordered pair of distinct statuses


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (S.REFUNDED, S.PENDING),
        (S.REFUNDED, S.COMPLETED),
        (S.COMPLETED, S.PENDING),
        (S.COMPLETED, S.EXPIRED),
        (S.COMPLETED, S.CANCELED),
        (S.CANCELED, S.COMPLETED),
        (S.FAILED, S.PENDING),
        (S.CONFIRMED, S.PENDING),
        (S.PENDING, S.REFUNDED),
        (S.OVERPAID, S.UNDERPAID),
        (S.EXPIRED, S.REFUNDED),
    ],
)
def test_well_known_impossible_transitions(before: Status, after: Status) -> None:
    assert (before, after) in IMPOSSIBLE


@pytest.mark.parametrize(("before", "after"), IMPOSSIBLE, ids=lambda s: str(s))
def test_an_impossible_transition_is_recorded_and_not_applied(
    before: Status, after: Status
) -> None:
    reached = run(event(before, 0))
    assert reached.status is before
    state, [effect] = apply(reached, event(after, 60))
    assert state.status is before
    last = state.events[-1]
    assert (last.status, last.applied, last.effective) == (after, False, after)
    assert last.note == f"impossible transition {before} -> {after}"
    assert (effect.applied, effect.from_status, effect.to_status) == (False, before, before)
    assert effect.note == last.note
    assert state.version == reached.version + 1  # recorded: the event is part of the history


@pytest.mark.parametrize(("before", "after"), POSSIBLE, ids=lambda s: str(s))
def test_an_allowed_transition_is_applied(before: Status, after: Status) -> None:
    state = run(*([] if before is S.NEW else [event(before, 0)]), event(after, 60))
    assert state.status is after
    assert state.events[-1].applied


def test_a_refund_is_final_whatever_arrives_after_it() -> None:
    state = run(*chain(S.NEW, S.PENDING, S.COMPLETED, S.REFUNDED))
    later = [event(s, 600 + 60 * k) for k, s in enumerate(Status) if s is not S.REFUNDED]
    state = run(*later, state=state)
    assert state.status is S.REFUNDED
    assert [a.applied for a in state.events[4:]] == [False] * len(later)


# ---- late payments ------------------------------------------------------------------------


@pytest.mark.parametrize("paid", PAID)
def test_a_payment_after_expiry_is_applied_and_flagged_late(paid: Status) -> None:
    state, [effect] = apply(run(event(S.NEW, 0), event(S.EXPIRED, 60)), event(paid, 120))
    assert state.status is paid
    assert state.late
    assert state.events[-1].applied
    assert state.events[-1].note == "late payment after expiry"
    assert (effect.from_status, effect.to_status, effect.note) == (
        S.EXPIRED,
        paid,
        "late payment after expiry",
    )


def test_a_payment_before_expiry_is_not_late() -> None:
    state = run(event(S.PENDING, 0), event(S.EXPIRED, 60))
    assert state.status is S.EXPIRED
    assert not state.late


def test_a_failure_after_expiry_is_not_a_late_payment() -> None:
    state = run(event(S.EXPIRED, 0), event(S.FAILED, 60))
    assert state.status is S.FAILED
    assert not state.late


def test_a_late_payment_delivered_before_the_expiry_is_still_late() -> None:
    """Order is the provider's, not the arrival's: the payment sorts after the expiry."""
    state = run(event(S.COMPLETED, 120), event(S.EXPIRED, 60), event(S.NEW, 0))
    assert (state.status, state.late) == (S.COMPLETED, True)


# ---- duplicates and version ---------------------------------------------------------------


def test_a_duplicate_changes_nothing_and_has_no_effect() -> None:
    state = run(*chain(S.NEW, S.PENDING))
    again, effects = apply(state, event(S.NEW, 0))
    assert again is state
    assert effects == []


def test_a_duplicate_is_the_event_id_whatever_the_payload() -> None:
    """A redelivery is the same event even if its copy differs (receipt, raw id, ...)."""
    state = run(event(S.PENDING, 0, "coinbase:e1", received=5))
    again, effects = apply(state, event(S.CANCELED, 99, "coinbase:e1", received=500))
    assert again is state
    assert effects == []


def test_version_grows_by_exactly_one_per_distinct_event() -> None:
    e1, e2, e3 = chain(S.NEW, S.PENDING, S.COMPLETED)
    versions = []
    state: TxState | None = None
    for e in (e3, e1, e3, e2, e1, e2, e3):
        state, _ = apply(state, e)
        versions.append(state.version)
    assert versions == [1, 2, 2, 3, 3, 3, 3]


@settings(max_examples=100, deadline=None)
@given(picks=st.lists(st.integers(0, 5), max_size=20))
def test_version_counts_distinct_events_and_never_decreases(picks: list[int]) -> None:
    pool = [event(s, 7 * i) for i, s in enumerate((S.NEW, S.PENDING, S.EXPIRED, S.COMPLETED))]
    pool += [event(S.REFUNDED, 3), event(S.PENDING, 50)]
    state: TxState | None = None
    seen: set[str] = set()
    previous = 0
    for i in picks:
        state, effects = apply(state, pool[i])
        is_new = pool[i].event_id not in seen
        seen.add(pool[i].event_id)
        assert state.version == len(seen)
        assert state.version >= previous
        assert len(effects) == int(is_new)
        if effects:
            assert effects[0].version == state.version
        previous = state.version


# ---- checkouts ----------------------------------------------------------------------------


def test_registering_a_checkout_sets_the_expected_payment() -> None:
    c = checkout("12.50", "USDC")
    state = register_checkout(None, c)
    assert state.checkout == c
    assert (state.status, state.version, state.updated_at) == (S.NEW, 1, c.created_at)
    assert (state.currency, state.order_id, state.amount) == ("USDC", "order-42", None)
    assert doc(state)["checkout"]["amount"] == "12.50"


@pytest.mark.parametrize("paid", [S.CONFIRMED, S.COMPLETED])
@pytest.mark.parametrize(
    ("amount", "expected"),
    [("12.49", S.UNDERPAID), ("12.51", S.OVERPAID), ("12.50", None), ("12.5000", None)],
)
def test_a_paid_event_is_reconciled_against_the_checkout(
    paid: Status, amount: str, expected: Status | None
) -> None:
    base = register_checkout(run(event(S.PENDING, 0)), checkout("12.50", "USDC"))
    state = run(event(paid, 60, amount=amount, currency="USDC"), state=base)
    want = expected or paid
    assert state.status is want
    last = state.events[-1]
    assert (last.status, last.effective, last.applied) == (paid, want, True)
    assert state.amount == Decimal(amount)


def test_reconciliation_ignores_the_case_of_the_currency() -> None:
    base = register_checkout(None, checkout("12.50", "USDC"))
    state = run(event(S.COMPLETED, 0, amount="10", currency="usdc"), state=base)
    assert state.status is S.UNDERPAID


def test_an_amount_in_another_currency_is_not_reconciled() -> None:
    base = register_checkout(None, checkout("12.50", "USDC"))
    state = run(event(S.COMPLETED, 0, amount="0.0001", currency="BTC"), state=base)
    assert state.status is S.COMPLETED


@pytest.mark.parametrize("status", [S.PENDING, S.EXPIRED, S.FAILED, S.REFUNDED])
def test_only_confirmed_and_completed_are_reconciled(status: Status) -> None:
    base = register_checkout(None, checkout("12.50", "USDC"))
    assert run(event(status, 0, amount="1", currency="USDC"), state=base).status is status


def test_a_checkout_registered_after_the_payment_reconciles_it() -> None:
    paid = run(event(S.PENDING, 0), event(S.COMPLETED, 60, amount="20", currency="USDC"))
    assert paid.status is S.COMPLETED
    state = register_checkout(paid, checkout("12.50", "USDC"))
    assert state.status is S.OVERPAID
    assert state.version == paid.version + 1


def test_without_a_checkout_nothing_is_reconciled() -> None:
    state = run(event(S.COMPLETED, 0, amount="0.01", currency="USDC"))
    assert state.status is S.COMPLETED


def test_a_repeated_checkout_registration_changes_nothing() -> None:
    first = register_checkout(run(event(S.PENDING, 0)), checkout("12.50", "USDC"))
    assert register_checkout(first, checkout("12.50", "USDC")) is first


def test_the_earliest_checkout_registration_wins_whichever_arrives_first() -> None:
    early, late = checkout("12.50", "USDC", t=-60), checkout("99", "BTC", t=600)
    paid = run(event(S.COMPLETED, 0, amount="12.50", currency="USDC"))
    one = register_checkout(register_checkout(paid, early), late)
    other = register_checkout(register_checkout(paid, late), early)
    assert converged(one) == converged(other)
    assert one.checkout == early and one.overruled == (late,)
    assert one.status is S.COMPLETED and one.version == 3
    assert register_checkout(one, late) is one  # a repeat of the overruled one: nothing


def test_registrations_made_in_the_same_millisecond_are_ordered_by_content() -> None:
    a, b = checkout("10", "USDC", t=0), checkout("12.50", "USDC", t=0)
    assert register_checkout(register_checkout(None, b), a).checkout == a
    assert register_checkout(register_checkout(None, a), b).checkout == a


# ---- serialization ------------------------------------------------------------------------


def rich_state() -> TxState:
    """A state that has everything: a checkout, late payment, impossible transition, amounts,
    receipts and none, microseconds and an order id."""
    state = register_checkout(None, checkout("12.50", "USDC"))
    return run(
        event(S.NEW, 0, order_id="order-42"),
        event(S.EXPIRED, 60, received=61.5),
        event(S.PENDING, 120, amount="12.5", currency="USDC", received=0.000123),
        event(S.COMPLETED, 180, amount="12.49", currency="USDC", received=181),
        event(S.NEW, 240, amount="1E+2", currency="usdc"),
        state=state,
    )


def doc(record: Entry | Snapshot | Transition) -> dict[str, Any]:
    """A record's JSON value as plain data."""
    d: dict[str, Any] = orjson.loads(encode(record))
    return d


def table_trip(state: TxState) -> TxState:
    """The state written to the table and read back."""
    back = decode_entry(encode(Entry(state))).state
    assert back is not None
    return back


def test_the_table_value_round_trips_exactly() -> None:
    state = rich_state()
    assert state.late and not state.events[-1].applied and state.status is S.UNDERPAID
    value = encode(Entry(state, {"coinbase:e": 5}))
    back = decode_entry(value)
    assert back == Entry(state, {"coinbase:e": 5})
    assert encode(back) == value
    assert back.state is not None and back.state.event_count == len(state.events) == 5


def test_a_checkout_only_state_round_trips() -> None:
    state = register_checkout(None, checkout())
    assert table_trip(state) == state


STATUSES = st.sampled_from(list(Status))


@st.composite
def histories(draw: st.DrawFn) -> tuple[Checkout | None, list[PaymentEvent]]:
    n = draw(st.integers(0, 6))
    events = [
        event(
            draw(STATUSES),
            draw(st.integers(0, 5)) * 30,
            f"coinbase:e{i}",
            amount=draw(st.none() | st.sampled_from(["0", "12.5", "12.50", "13", "1E+1"])),
            currency=draw(st.sampled_from(["USDC", "usdc", "BTC"])),
            received=draw(st.none() | st.floats(0, 1000).map(lambda f: round(f, 6))),
        )
        for i in range(n)
    ]
    c = draw(st.none() | st.sampled_from([checkout("12.50"), checkout("13", "BTC")]))
    return c, events


@settings(max_examples=100, deadline=None)
@given(history=histories())
def test_any_state_round_trips(history: tuple[Checkout | None, list[PaymentEvent]]) -> None:
    c, events = history
    state = register_checkout(None, c) if c else None
    for e in events:
        state, _ = apply(state, e)
    if state is None:
        return
    value = encode(Entry(state))
    assert decode_entry(value).state == state
    assert encode(decode_entry(value)) == value


# ---- updated_at ---------------------------------------------------------------------------


def test_updated_at_is_the_latest_receipt_whatever_the_arrival_order() -> None:
    e1 = event(S.NEW, 0, received=300)
    e2 = event(S.PENDING, 60, received=100)
    e3 = event(S.COMPLETED, 120, received=200)
    for order in ((e1, e2, e3), (e3, e2, e1), (e2, e3, e1), (e2, e1, e3)):
        assert run(*order).updated_at == at(300)


def test_updated_at_falls_back_to_the_provider_time_without_a_receipt() -> None:
    assert run(event(S.PENDING, 42)).updated_at == at(42)


def test_updated_at_counts_the_checkout_registration() -> None:
    state = run(event(S.PENDING, 0, received=10))
    assert register_checkout(state, checkout(t=20)).updated_at == at(20)
    assert register_checkout(state, checkout(t=5)).updated_at == at(10)


def test_a_duplicate_does_not_move_updated_at() -> None:
    state = run(event(S.PENDING, 0, "coinbase:e1", received=10))
    assert run(event(S.PENDING, 0, "coinbase:e1", received=99), state=state).updated_at == at(10)


# ---- the decision record draws exactly NEXT -----------------------------------------------


def test_the_decision_record_draws_exactly_the_allowed_transitions() -> None:
    text = ADR.read_text()
    diagram = text.split("```mermaid", 1)[1].split("```", 1)[0]
    drawn = {
        (Status(a), Status(b))
        for a, b in re.findall(r"^\s*(\w+)\s*-->\s*(\w+)\s*(?::.*)?$", diagram, flags=re.M)
    }
    assert drawn == set(POSSIBLE)


@pytest.mark.parametrize(
    "stages",
    [
        (S.NEW, S.PENDING, S.CONFIRMED, S.COMPLETED, S.REFUNDED),
        (S.PENDING, S.UNDERPAID, S.CONFIRMED, S.OVERPAID, S.COMPLETED),
        (S.NEW, S.PENDING, S.EXPIRED),
        (S.PENDING, S.FAILED),
        (S.NEW, S.CANCELED, S.REFUNDED),
    ],
    ids=lambda st: "-".join(s.value for s in st),
)
def test_stages_stamped_in_one_second_fold_in_the_order_a_payment_lives_them(
    stages: tuple[Status, ...],
) -> None:
    """Whatever the arrival order, the whole chain is applied, in the payment's own order (the
    event ids sort the other way round, so that only the status rank can order them)."""
    same_second = [event(s, 0, f"coinbase:e{len(stages) - k}") for k, s in enumerate(stages)]
    for arrival in (same_second, same_second[::-1], same_second[1:] + same_second[:1]):
        state = run(*arrival)
        assert state.status is stages[-1]
        assert [a.status for a in state.events] == list(stages)
        assert all(a.applied for a in state.events)


# ---- transition records: as first sent, restated equal ------------------------------------


def test_each_transition_carries_the_version_that_event_produced() -> None:
    state: TxState | None = None
    versions = []
    for e in chain(S.NEW, S.PENDING, S.COMPLETED):
        state, (effect,) = apply(state, e)
        versions.append(effect.version)
    assert versions == [1, 2, 3]
    assert state is not None
    assert [e["version"] for e in doc(state)["events"]] == [1, 2, 3]


def test_a_restated_transition_equals_the_original_even_after_a_late_earlier_event() -> None:
    pending, completed = event(S.PENDING, 60, received=61), event(S.COMPLETED, 120, received=121)
    state, (first,) = apply(None, completed)
    state, _ = apply(state, pending)  # arrives late, sorts before: the fold is redone
    state, _ = apply(state, event(S.REFUNDED, 180, received=181))
    again = restate(state, completed.event_id)
    assert again is not None
    assert doc(again) == doc(first)
    assert (first.from_status, first.to_status, first.version) == (S.NEW, S.COMPLETED, 1)


def test_restating_survives_the_table_round_trip() -> None:
    state, (first,) = apply(None, event(S.PENDING, 0, received=1))
    state, _ = apply(state, event(S.COMPLETED, 60, received=61))
    again = restate(table_trip(state), first.event_id)
    assert again is not None and encode(again) == encode(first)


def test_a_state_written_before_origins_were_kept_still_restates() -> None:
    state = run(event(S.PENDING, 0), event(S.COMPLETED, 60))
    old = table_trip(without_origins(state))
    assert all(a.origin is None for a in old.events)
    again = restate(old, event(S.PENDING, 0).event_id)
    assert again is not None
    assert (again.from_status, again.to_status, again.version) == (S.COMPLETED, S.COMPLETED, 2)


def test_a_transition_carries_the_payment_amount_from_its_checkout_when_the_event_has_none() -> (
    None
):
    state = register_checkout(None, checkout("12.50", "USDC"))
    state, (effect,) = apply(state, event(S.COMPLETED, 0))  # BTCPay's settled: no amount
    assert doc(effect)["payment_amount"] == "12.50"
    assert doc(effect)["payment_currency"] == "USDC"


def test_a_transition_carries_the_paid_amount_once_an_event_states_it() -> None:
    state = register_checkout(None, checkout("12.50", "USDC"))
    state, _ = apply(state, event(S.PENDING, 0, amount="12.40", currency="USDC"))
    state, (effect,) = apply(state, event(S.COMPLETED, 60))
    assert (effect.payment_amount, effect.payment_currency) == (Decimal("12.40"), "USDC")


def test_without_checkout_or_amount_a_transition_has_no_payment_amount() -> None:
    _, (effect,) = apply(None, event(S.PENDING, 0))
    assert doc(effect)["payment_amount"] is None


# ---- bounds: one payment's data cannot grow without limit ----------------------------------


def test_events_past_the_bound_are_refused_and_the_state_is_kept() -> None:
    state: TxState | None = None
    for k in range(MAX_EVENTS):
        state, _ = apply(state, event(S.PENDING, k, event_id=f"coinbase:e{k}"))
    assert state is not None and len(state.events) == MAX_EVENTS
    with pytest.raises(StateLimit):
        apply(state, event(S.COMPLETED, 10_000, event_id="coinbase:one-too-many"))
    same, effects = apply(state, event(S.PENDING, 3, event_id="coinbase:e3"))  # a duplicate
    assert same is state and effects == []


def test_registrations_past_the_bound_keep_the_earliest_whatever_the_order() -> None:
    regs = [checkout(str(10 + k), "USDC", t=k) for k in range(MAX_REGISTRATIONS + 5)]
    forward: TxState | None = None
    for c in regs[:MAX_REGISTRATIONS]:
        forward = register_checkout(forward, c)
    assert forward is not None
    for c in regs[MAX_REGISTRATIONS:]:
        with pytest.raises(StateLimit):
            register_checkout(forward, c)
    backward: TxState | None = None
    for c in reversed(regs):
        backward = register_checkout(backward, c)
    assert backward is not None
    assert backward.checkout == forward.checkout == regs[0]
    assert backward.overruled == forward.overruled == tuple(regs[1:MAX_REGISTRATIONS])
