"""The payment status state machine: a pure function ``apply(state, event) -> (state, effects)``.

Convergence by construction: a transaction's state is a fold of the *set* of its distinct
events, taken in a total order (provider timestamp, status rank, event id), starting from
``new``. Arrival order and duplicates cannot change a set, so they cannot change the result.
Impossible transitions are recorded on the event and not applied; a payment seen after the
payment expired is applied and flagged ``late``. See docs/decisions/0001-state-machine.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from streams.errors import StateLimit
from streams.model import Checkout, PaymentEvent, Status, iso, parse_iso

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


@dataclass(frozen=True, slots=True)
class Origin:
    """What an event did when it was first applied: its transition record, kept so that a
    redelivery re-sends exactly that record (a later out-of-order event may refold it)."""

    from_status: Status
    to_status: Status
    applied: bool
    note: str
    effective: Status
    version: int
    payment_amount: Decimal | None
    payment_currency: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "from_status": self.from_status.value,
            "to_status": self.to_status.value,
            "first_applied": self.applied,
            "first_note": self.note,
            "first_effective": self.effective.value,
            "payment_amount": _dec(self.payment_amount),
            "payment_currency": self.payment_currency,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Origin | None:
        if "first_applied" not in d:  # written before origins were kept
            return None
        return cls(
            Status(d["from_status"]),
            Status(d["to_status"]),
            d["first_applied"],
            d["first_note"],
            Status(d["first_effective"]),
            d["version"],
            None if d.get("payment_amount") is None else Decimal(d["payment_amount"]),
            d.get("payment_currency"),
        )


@dataclass(frozen=True, slots=True)
class Applied:
    """One distinct event as the fold saw it (``applied``, ``effective``, ``note`` may change
    when an earlier event arrives late) and as it was first applied (``origin``)."""

    event: PaymentEvent
    applied: bool
    effective: Status  # the status the event moved to, after reconciliation
    note: str = ""
    origin: Origin | None = None

    def to_dict(self, origin: bool = True) -> dict[str, Any]:
        return {
            **self.event.to_dict(),
            "applied": self.applied,
            "effective": self.effective.value,
            "note": self.note,
            **(self.origin.to_dict() if self.origin and origin else {}),
        }


@dataclass(frozen=True, slots=True)
class TxState:
    provider: str
    external_id: str
    status: Status = S.NEW
    version: int = 0
    amount: Decimal | None = None
    currency: str | None = None
    order_id: str | None = None
    checkout: Checkout | None = None
    late: bool = False
    updated_at: datetime | None = None
    events: tuple[Applied, ...] = field(default=())
    #: registrations of the same payment that lost to ``checkout`` (see ``register_checkout``)
    overruled: tuple[Checkout, ...] = field(default=())

    def to_dict(self, origins: bool = True) -> dict[str, Any]:
        """``origins=False``: only what convergence promises (each event's origin, the record
        it produced on arrival, depends on the arrival order by nature)."""
        return {
            "provider": self.provider,
            "external_id": self.external_id,
            "status": self.status.value,
            "version": self.version,
            "amount": _dec(self.amount),
            "currency": self.currency,
            "order_id": self.order_id,
            "checkout": None if self.checkout is None else self.checkout.to_dict(),
            "late": self.late,
            "updated_at": None if self.updated_at is None else iso(self.updated_at),
            "events": [a.to_dict(origins) for a in self.events],
            "overruled_checkouts": [c.to_dict() for c in self.overruled],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TxState:
        """Read back what ``to_dict`` wrote: no fold here, the next ``apply`` folds anew."""
        return cls(
            provider=d["provider"],
            external_id=d["external_id"],
            status=Status(d["status"]),
            version=d["version"],
            amount=None if d.get("amount") is None else Decimal(d["amount"]),
            currency=d.get("currency"),
            order_id=d.get("order_id"),
            checkout=Checkout.from_dict(d["checkout"]) if d.get("checkout") else None,
            late=d.get("late", False),
            updated_at=_ts(d.get("updated_at")),
            events=tuple(
                Applied(
                    PaymentEvent.from_dict(e),
                    e["applied"],
                    Status(e["effective"]),
                    e.get("note", ""),
                    Origin.from_dict(e),
                )
                for e in d.get("events", [])
            ),
            overruled=tuple(Checkout.from_dict(c) for c in d.get("overruled_checkouts", [])),
        )


@dataclass(frozen=True, slots=True)
class Effect:
    """What one new event did: the record for ``payments.transitions``."""

    event: PaymentEvent
    from_status: Status
    to_status: Status
    applied: bool
    note: str
    version: int
    effective: Status  # the status the event itself stands for, after reconciliation
    #: the payment's amount and currency as known right after this event (checkout or events)
    payment_amount: Decimal | None = None
    payment_currency: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.event.to_dict(),
            "from_status": self.from_status.value,
            "to_status": self.to_status.value,
            "effective_status": self.effective.value,
            "applied": self.applied,
            "note": self.note,
            "version": self.version,
            "payment_amount": _dec(self.payment_amount),
            "payment_currency": self.payment_currency,
        }

    @classmethod
    def first(cls, event: PaymentEvent, o: Origin) -> Effect:
        return cls(
            event,
            o.from_status,
            o.to_status,
            o.applied,
            o.note,
            o.version,
            o.effective,
            o.payment_amount,
            o.payment_currency,
        )


_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def order_key(e: PaymentEvent) -> tuple[datetime, int, str]:
    """Provider time, then status rank, then event id: a total order that ignores arrival."""
    return (e.occurred_at if e.provider_time else _NO_TIME, RANK[e.status], e.event_id)


def apply(state: TxState | None, event: PaymentEvent) -> tuple[TxState, list[Effect]]:
    """Add one event to a transaction. A duplicate (same event id) changes nothing."""
    state = state or TxState(event.provider, event.external_id)
    if any(a.event.event_id == event.event_id for a in state.events):
        return state, []
    if len(state.events) >= MAX_EVENTS:
        raise StateLimit(f"payment already holds {MAX_EVENTS} distinct events")
    events = (*(a.event for a in state.events), event)
    new = fold(state, state.checkout, events)
    version = state.version + 1
    mine = next(a for a in new.events if a.event.event_id == event.event_id)
    amount, currency = payment_amount(new)
    origin = Origin(
        state.status, new.status, mine.applied, mine.note, mine.effective, version, amount, currency
    )
    new = replace(
        new,
        version=version,
        updated_at=_latest(state, _receipt(event)),
        events=tuple(replace(a, origin=origin) if a is mine else a for a in new.events),
    )
    return new, [Effect.first(event, origin)]


def payment_amount(state: TxState) -> tuple[Decimal | None, str | None]:
    """What the payment is worth as far as the pipeline knows: paid events, else its checkout."""
    c = state.checkout
    amount = state.amount if state.amount is not None else (c.amount if c else None)
    return amount, state.currency or (c.currency if c else None)


def restate(state: TxState, event_id: str) -> Effect | None:
    """The transition record of an event the state already holds, exactly as first sent.

    Re-sent when a duplicate arrives, so that outputs lost in a crash (after the table was
    written, before the output topics were) are restored equal to the originals; sinks
    ignore what they already have. (A state written before origins were kept restates the
    event as the state sees it now.)
    """
    for a in state.events:
        if a.event.event_id == event_id:
            if a.origin is not None:
                return Effect.first(a.event, a.origin)
            amount, currency = payment_amount(state)
            return Effect(
                a.event,
                state.status,
                state.status,
                a.applied,
                a.note,
                state.version,
                a.effective,
                amount,
                currency,
            )
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
        new = fold(state, winner, tuple(a.event for a in state.events))
    return replace(
        new,
        overruled=tuple(overruled),
        version=state.version + 1,
        updated_at=_latest(state, checkout.created_at),
    )


def fold(base: TxState, checkout: Checkout | None, events: tuple[PaymentEvent, ...]) -> TxState:
    status, amount, currency, order_id, late = S.NEW, None, None, None, False
    if checkout is not None:
        currency, order_id = checkout.currency, checkout.order_id
    origins = {a.event.event_id: a.origin for a in base.events}
    seen: list[Applied] = []
    for e in sorted(events, key=order_key):
        origin = origins.get(e.event_id)
        target = reconcile(e, checkout)
        order_id = order_id or e.order_id
        if e.amount is not None and e.status in _PAID:
            amount, currency = e.amount, e.currency or currency
        if target == status:
            seen.append(Applied(e, True, target, "", origin))
        elif target in ALLOWED[status]:
            note = ""
            if status is S.EXPIRED and target in _PAID:
                late, note = True, "late payment after expiry"
            seen.append(Applied(e, True, target, note, origin))
            status = target
        else:
            note = f"impossible transition {status} -> {target}"
            seen.append(Applied(e, False, target, note, origin))
    return replace(
        base,
        status=status,
        amount=amount,
        currency=currency,
        order_id=order_id,
        checkout=checkout,
        late=late,
        events=tuple(seen),
    )


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


def _dec(d: Decimal | None) -> str | None:
    return None if d is None else str(d)


def _ts(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)
