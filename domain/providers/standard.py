"""Standard Webhooks carrying the project's generic event (also the body of ``jwt``):

``{"id": "evt_...", "type": "payment.<status>", "timestamp": "<RFC 3339>", "data": {"payment_id",
"status", "amount": "12.50", "currency", "order_id"}}``

Dedup id: the ``webhook-id`` header (signed, kept by ingest). Payment id: ``data.payment_id``.
Time: ``timestamp``. Statuses are already canonical; amounts are decimal strings, never numbers.
"""

from __future__ import annotations

import re
from typing import Any

from domain.errors import NormalizeError
from domain.model import Status
from domain.providers._json import decimal, load_object, obj, opt_text, text, timestamp
from domain.records import PaymentEvent, RawWebhook

_DECIMAL = re.compile(r"[0-9]{1,30}(\.[0-9]{1,30})?")  # ASCII digits only


def normalize(raw: RawWebhook) -> list[PaymentEvent]:
    webhook_id = text(dict(raw.headers), "webhook-id")
    return [generic_event(load_object(raw.body), f"standard:{webhook_id}", "standard")]


def payment_id(body: bytes) -> str:
    """The payment a generic event is about (``standard`` and ``jwt``; ingest keys by it)."""
    return text(obj(load_object(body), "data"), "payment_id")


def generic_event(doc: dict[str, Any], event_id: str, provider: str) -> PaymentEvent:
    """The generic event body as a PaymentEvent; ``type`` must agree with ``data.status``."""
    etype = text(doc, "type")
    data = obj(doc, "data")
    name = text(data, "status")
    try:
        status = Status(name)
    except ValueError:
        raise NormalizeError(f"status {name[:40]!r} is not canonical") from None
    if etype != f"payment.{status.value}":
        raise NormalizeError("type does not match data.status")
    amount = data.get("amount")
    if amount is not None and not (isinstance(amount, str) and _DECIMAL.fullmatch(amount)):
        raise NormalizeError("data.amount is not a decimal string")
    return PaymentEvent(
        event_id=event_id,
        provider=provider,
        external_id=text(data, "payment_id"),  # as payment_id
        status=status,
        occurred_at=timestamp(doc.get("timestamp"), "timestamp"),
        provider_status=etype,
        amount=None if amount is None else decimal(amount, "data.amount"),
        currency=text(data, "currency") if amount is not None else opt_text(data, "currency"),
        order_id=opt_text(data, "order_id"),
    )
