"""Coinbase Commerce: ``{id, scheduled_for, attempt_number, event: {id, type, created_at, data}}``.

Dedup id: ``event.id``. Payment id: the charge ``id`` (its ``code`` when the id is absent).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.errors import NormalizeError
from domain.model import Status
from domain.providers._json import decimal, load_object, obj, opt_text, text, timestamp
from domain.records import PaymentEvent, RawWebhook

EVENT_STATUS = {
    "charge:created": Status.NEW,
    "charge:pending": Status.PENDING,
    "charge:confirmed": Status.COMPLETED,
    "charge:resolved": Status.COMPLETED,
    "charge:delayed": Status.PENDING,
}

# charge:failed says the charge ended without a clean payment; the timeline tells how.
UNRESOLVED_CONTEXT = {"UNDERPAID": Status.UNDERPAID, "OVERPAID": Status.OVERPAID}


def payment_id(body: bytes) -> str:
    """The payment this webhook is about (ingest keys the raw record by it)."""
    return _charge_id(obj(obj(load_object(body), "event"), "data"))


def _charge_id(charge: dict[str, Any]) -> str:
    return opt_text(charge, "id") or text(charge, "code")


def normalize(raw: RawWebhook) -> list[PaymentEvent]:
    doc = load_object(raw.body)
    event = obj(doc, "event")
    charge = obj(event, "data")
    etype = text(event, "type")
    status = _status(etype, charge)
    external_id = _charge_id(charge)
    amount, currency = _amount(charge)
    metadata = charge.get("metadata")
    order_id = opt_text(metadata, "order_id") if isinstance(metadata, dict) else None
    return [
        PaymentEvent(
            event_id=f"coinbase:{text(event, 'id')}",
            provider="coinbase",
            external_id=external_id,
            status=status,
            occurred_at=timestamp(event.get("created_at"), "event.created_at"),
            provider_status=etype,
            amount=amount,
            currency=currency,
            order_id=order_id,
            reference=opt_text(charge, "code"),
        )
    ]


def _status(etype: str, charge: dict[str, Any]) -> Status:
    if etype in EVENT_STATUS:
        return EVENT_STATUS[etype]
    if etype != "charge:failed":
        raise NormalizeError(f"unknown coinbase event type {etype[:60]!r}")
    timeline = charge.get("timeline")
    last = timeline[-1] if isinstance(timeline, list) and timeline else {}
    if not isinstance(last, dict):
        return Status.FAILED
    if last.get("status") == "EXPIRED":
        return Status.EXPIRED
    if last.get("status") == "CANCELED":
        return Status.CANCELED
    return UNRESOLVED_CONTEXT.get(str(last.get("context", "")), Status.FAILED)


def _amount(charge: dict[str, Any]) -> tuple[Decimal | None, str | None]:
    """What was paid in the charge's local currency, else what was asked."""
    payments = charge.get("payments")
    if isinstance(payments, list) and payments:
        total = Decimal(0)
        currency = None
        for p in payments:
            local = obj(obj(p, "value"), "local")
            total += decimal(local.get("amount"), "payment amount")
            currency = text(local, "currency")
        return total, currency
    pricing = charge.get("pricing")
    if isinstance(pricing, dict) and isinstance(pricing.get("local"), dict):
        local = pricing["local"]
        return decimal(local.get("amount"), "pricing amount"), text(local, "currency")
    return None, None
