"""The payment status state machine: a pure function ``apply(state, event) -> (state, effects)``.

Convergence by construction: a transaction's state is a fold of the *set* of its distinct
events, taken in a total order (provider timestamp, status rank, event id), starting from
``new``. Arrival order and duplicates cannot change a set, so they cannot change the result.
Impossible transitions are recorded on the event and not applied; a payment seen after the
payment expired is applied and flagged ``late``. See docs/decisions/0001-state-machine.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from msgspec.structs import replace

from domain.errors import StateLimit
from domain.model import Status
from domain.records import Applied, Checkout, Origin, PaymentEvent, Transition, TxState

S = Status

#: bounds of one payment's state (decision 0006): real payments stay far below them; past
#: them a record is refused (dead-lettered) so that one payment cannot stop the pipeline
MAX_EVENTS = 500
#: distinct checkout registrations kept: the earliest ``MAX_REGISTRATIONS`` by checkout_order
MAX_REGISTRATIONS = 8

#: tie-break when two events carry the same provider timestamp: later stages sort later
RANK = {
    S.NEW: 0,
    S.PENDING: 1,
    S.UNDERPAID: 2,
    S.CONFIRMED: 3,
    S.OVERPAID: 4,
    S.COMPLETED: 5,
    S.EXPIRED: 5,
    S.FAILED: 5,
    S.CANCELED: 5,
    S.REFUNDED: 6,
}

_PAID = {S.PENDING, S.CONFIRMED, S.COMPLETED, S.UNDERPAID, S.OVERPAID}

#: where each status may go next (a self-transition is always allowed and changes nothing)
ALLOWED: dict[Status, frozenset[Status]] = {
    S.NEW: frozenset(Status) - {S.NEW},
    S.PENDING: frozenset(_PAID | {S.EXPIRED, S.FAILED, S.CANCELED}),
    S.UNDERPAID: frozenset(_PAID | {S.EXPIRED, S.FAILED, S.CANCELED, S.REFUNDED}),
    S.CONFIRMED: frozenset({S.COMPLETED, S.UNDERPAID, S.OVERPAID, S.FAILED, S.REFUNDED}),
    S.OVERPAID: frozenset({S.COMPLETED, S.REFUNDED}),
    S.COMPLETED: frozenset({S.REFUNDED, S.OVERPAID}),
    S.EXPIRED: frozenset(_PAID | {S.FAILED, S.CANCELED}),
    S.FAILED: frozenset({S.COMPLETED, S.REFUNDED}),
    S.CANCELED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}


_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def order_key(e: PaymentEvent) -> tuple[datetime, int, str]:
    """Provider time, then status rank, then event id: a total order that ignores arrival."""
    return (e.occurred_at if e.provider_time else _NO_TIME, RANK[e.status], e.event_id)


def apply(state: TxState | None, event: PaymentEvent) -> tuple[TxState, list[Transition]]:
    """Add one event to a transaction. A duplicate (same event id) changes nothing."""
    state = state or TxState(event.provider, event.external_id)
    if any(a.event_id == event.event_id for a in state.events):
        return state, []
    if len(state.events) >= MAX_EVENTS:
        raise StateLimit(f"payment already holds {MAX_EVENTS} distinct events")
    version = state.version + 1
    updated_at = _latest(state, _receipt(event))
    if not state.events or order_key(event) > order_key(state.events[-1]):
        run = _Run.of(state)  # in order: one step on from the state, no refold
        mine = run.step(event, state.checkout, None)
        origin = _origin(state, run.status, run.amount, run.currency, mine, version)
        new = replace(
            state, status=run.status, version=version, amount=run.amount,
            currency=run.currency, order_id=run.order_id, late=run.late, updated_at=updated_at,
            events=(*state.events, mine.with_origin(origin)),
        )  # fmt: skip
        return new, [Transition.first(event, origin)]
    new = fold(state, state.checkout, (*state.events, event))
    mine = next(a for a in new.events if a.event_id == event.event_id)
    origin = _origin(state, new.status, new.amount, new.currency, mine, version)
    events = tuple(a.with_origin(origin) if a is mine else a for a in new.events)
    new = replace(new, version=version, updated_at=updated_at, events=events)
    return new, [Transition.first(event, origin)]


def _origin(
    before: TxState,
    status: Status,
    amount: Decimal | None,
    currency: str | None,
    mine: Applied,
    version: int,
) -> Origin:
    """The transition an event produced on arrival: ``before`` moved to ``status``."""
    worth, unit = _worth(amount, currency, before.checkout)
    return Origin(
        before.status, status, mine.applied, mine.note, mine.effective, version, worth, unit
    )


def payment_amount(state: TxState) -> tuple[Decimal | None, str | None]:
    """What the payment is worth as far as the pipeline knows: paid events, else its checkout."""
    return _worth(state.amount, state.currency, state.checkout)


def _worth(
    amount: Decimal | None, currency: str | None, c: Checkout | None
) -> tuple[Decimal | None, str | None]:
    if amount is None and c is not None:
        amount = c.amount
    return amount, currency or (c.currency if c else None)


def restate(state: TxState, event_id: str) -> Transition | None:
    """The transition record of an event the state already holds, exactly as first sent.

    Re-sent when a duplicate arrives, so that outputs lost in a crash (after the table was
    written, before the output topics were) are restored equal to the originals; sinks
    ignore what they already have. (A state written before origins were kept restates the
    event as the state sees it now.)
    """
    for a in state.events:
        if a.event_id == event_id:
            origin = a.origin
            if origin is None:
                amount, currency = payment_amount(state)
                s, v = state.status, state.version
                origin = Origin(s, s, a.applied, a.note, a.effective, v, amount, currency)
            return Transition.first(a, origin)
    return None


def checkout_order(c: Checkout) -> tuple[datetime, Decimal, str, str]:
    """Registration time, then the content: a total order over a payment's registrations."""
    return (c.created_at, c.amount, c.currency, c.order_id)


def register_checkout(state: TxState | None, checkout: Checkout) -> TxState:
    """Attach the expected payment. The earliest registration wins (by ``checkout_order``);
    a later, different one is kept as overruled; a repeat changes nothing.

    Two registrations of one payment may reach the workers in either order (they travel
    through different raw partitions), so the winner must not depend on which came first.
    Only the earliest ``MAX_REGISTRATIONS`` are kept: with the bound full, a later one is
    refused (``StateLimit``) and an earlier one pushes the latest kept out, so the winner is
    still the earliest of all.
    """
    state = state or TxState(checkout.provider, checkout.external_id)
    known = () if state.checkout is None else (state.checkout, *state.overruled)
    if checkout in known:
        return state
    ranked = sorted((*known, checkout), key=checkout_order)
    if len(ranked) > MAX_REGISTRATIONS:
        if ranked[-1] == checkout:
            raise StateLimit(
                f"payment already has {MAX_REGISTRATIONS} earlier checkout registrations"
            )
        ranked = ranked[:MAX_REGISTRATIONS]
    winner, *overruled = ranked
    new = state
    if winner != state.checkout:
        new = fold(state, winner, state.events)
    return replace(
        new,
        overruled=tuple(overruled),
        version=state.version + 1,
        updated_at=_latest(state, checkout.created_at),
    )


@dataclass(slots=True)
class _Run:
    """The fold's running values: exactly a state's own fields, so that an event that sorts
    after every event the state holds continues from the state without a refold."""

    status: Status
    amount: Decimal | None
    currency: str | None
    order_id: str | None
    late: bool

    @classmethod
    def of(cls, state: TxState) -> _Run:
        return cls(state.status, state.amount, state.currency, state.order_id, state.late)

    def step(self, e: PaymentEvent, checkout: Checkout | None, origin: Origin | None) -> Applied:
        target = reconcile(e, checkout)
        self.order_id = self.order_id or e.order_id
        if e.amount is not None and e.status in _PAID:
            self.amount, self.currency = e.amount, e.currency or self.currency
        if target == self.status:
            return Applied.of(e, True, target, "", origin)
        if target in ALLOWED[self.status]:
            note = ""
            if self.status is S.EXPIRED and target in _PAID:
                self.late, note = True, "late payment after expiry"
            self.status = target
            return Applied.of(e, True, target, note, origin)
        note = f"impossible transition {self.status} -> {target}"
        return Applied.of(e, False, target, note, origin)

    def into(
        self, base: TxState, checkout: Checkout | None, events: tuple[Applied, ...]
    ) -> TxState:
        return replace(
            base,
            status=self.status,
            amount=self.amount,
            currency=self.currency,
            order_id=self.order_id,
            checkout=checkout,
            late=self.late,
            events=events,
        )


def fold(base: TxState, checkout: Checkout | None, events: tuple[PaymentEvent, ...]) -> TxState:
    """The state of a set of events, taken in ``order_key`` order from ``new``."""
    run = _Run(S.NEW, None, None, None, False)
    if checkout is not None:
        run.currency, run.order_id = checkout.currency, checkout.order_id
    origins = {a.event_id: a.origin for a in base.events}
    seen = tuple(
        run.step(e, checkout, origins.get(e.event_id)) for e in sorted(events, key=order_key)
    )
    return run.into(base, checkout, seen)


def reconcile(e: PaymentEvent, checkout: Checkout | None) -> Status:
    """A paid event whose amount differs from the checkout's becomes under- or overpaid."""
    if (
        checkout is None
        or e.amount is None
        or e.status not in (S.CONFIRMED, S.COMPLETED)
        or (e.currency or "").upper() != checkout.currency.upper()
    ):
        return e.status
    if e.amount < checkout.amount:
        return S.UNDERPAID
    if e.amount > checkout.amount:
        return S.OVERPAID
    return e.status


def _receipt(e: PaymentEvent) -> datetime:
    return e.received_at or e.occurred_at


def _latest(state: TxState, ts: datetime) -> datetime:
    """The newest receipt seen: a function of the event set, so arrival order cannot change it."""
    return ts if state.updated_at is None else max(state.updated_at, ts)
