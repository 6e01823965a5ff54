"""A payment's state and the records the state machine emits, with their serialization.

``TxState`` is what the ``transactions`` table holds and ``payments.state`` carries; ``Effect``
is one record of ``payments.transitions``; each event the state holds keeps its ``Origin``, the
transition it produced on arrival. The logic that makes them is in ``domain.machine``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.model import Checkout, PaymentEvent, Status, iso, parse_iso

S = Status


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

    def to_dict(
        self, origins: bool = True, snapshot: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The table's value: ``snapshot()`` (passed in when already built) and the events.
        ``origins=False``: only what convergence promises (each event's origin, the record it
        produced on arrival, depends on the arrival order by nature)."""
        return {
            **(self.snapshot() if snapshot is None else snapshot),
            "events": [a.to_dict(origins) for a in self.events],
        }

    def snapshot(self) -> dict[str, Any]:
        """The ``payments.state`` record: the payment as it stands, without its events (their
        history is on ``payments.transitions``), so its size does not grow with them."""
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
            "event_count": len(self.events),
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


def _dec(d: Decimal | None) -> str | None:
    return None if d is None else str(d)


def _ts(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)
