"""NOWPayments IPN: ``{payment_id, payment_status, price_amount, price_currency, pay_amount,
actually_paid, pay_currency, order_id, updated_at, ...}``.

No event id: the dedup id is ``payment_id:payment_status:updated_at`` (a redelivered IPN repeats
all three). Payment id: ``payment_id``. Time: ``updated_at``, epoch milliseconds as a number or
string, or an ISO 8601 string. Numbers are read as Decimal from their JSON text, never as float.

NOWPayments signs a JavaScript re-serialization, so one IPN may arrive with ``1234``, ``1234.0``
or ``1.234e3`` under one valid signature: a number that names something (``payment_id``,
``updated_at``) is written in one canonical form (``1234``) before ids are derived from it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.errors import NormalizeError
from domain.model import Status
from domain.providers._json import decimal, opt_text, text, timestamp
from domain.records import PaymentEvent, RawWebhook

STATUS = {
    "waiting": Status.NEW,  # created, waiting for the customer to send funds
    "confirming": Status.PENDING,  # funds seen on chain, not yet confirmed
    "confirmed": Status.CONFIRMED,
    "sending": Status.CONFIRMED,  # confirmed, being forwarded to the merchant's wallet
    "partially_paid": Status.UNDERPAID,
    "finished": Status.COMPLETED,
    "failed": Status.FAILED,
    "refunded": Status.REFUNDED,
    "expired": Status.EXPIRED,
}
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z


def payment_id(body: bytes) -> str:
    """The payment this IPN is about (ingest keys the raw record by it)."""
    return _payment_id(_load(body))


def _payment_id(doc: dict[str, Any]) -> str:
    return _id_text(doc, "payment_id")


def normalize(raw: RawWebhook) -> list[PaymentEvent]:
    doc = _load(raw.body)
    payment_id = _payment_id(doc)
    pstatus = text(doc, "payment_status")
    if pstatus not in STATUS:
        raise NormalizeError(f"unknown nowpayments payment_status {pstatus[:60]!r}")
    updated = doc.get("updated_at")
    amount, currency = _amount(doc)
    return [
        PaymentEvent(
            event_id=f"nowpayments:{payment_id}:{pstatus}:{_plain(updated)}",
            provider="nowpayments",
            external_id=payment_id,
            status=STATUS[pstatus],
            occurred_at=_updated_at(updated),
            provider_status=pstatus,
            amount=amount,
            currency=currency,
            order_id=opt_text(doc, "order_id"),
        )
    ]


def _load(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise NormalizeError("body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise NormalizeError("body is not a JSON object")
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _number(doc: dict[str, Any], key: str) -> Decimal | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):  # as written, but 1.234e3 plainly: 1234
        value = format(value, "f") if -40 <= value.adjusted() <= 40 else str(value)
    return decimal(value, key)


def _canonical(value: int | Decimal, what: str) -> str:
    """One text per JSON number: ``1234``, ``1234.0`` and ``1.234e3`` all give ``1234``."""
    number = Decimal(value)
    if not number.is_finite() or not -40 <= number.adjusted() <= 40:
        raise NormalizeError(f"{what} is out of range")
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def _id_text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return _canonical(value, key)
    return text(doc, key)


def _amount(doc: dict[str, Any]) -> tuple[Decimal | None, str | None]:
    """What was actually paid, else the price, else the amount asked in the pay currency."""
    paid = _number(doc, "actually_paid")
    if paid:
        return paid, _currency(doc, "pay_currency")
    price = _number(doc, "price_amount")
    if price is not None:
        return price, _currency(doc, "price_currency")
    asked = _number(doc, "pay_amount")
    return (asked, _currency(doc, "pay_currency")) if asked is not None else (None, None)


def _currency(doc: dict[str, Any], key: str) -> str:
    return text(doc, key).upper()


def _plain(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal) or value == "":
        raise NormalizeError("missing updated_at")
    out = value if isinstance(value, str) else _canonical(value, "updated_at")
    if len(out) > 64:
        raise NormalizeError("field 'updated_at' is too long")
    return out


def _updated_at(value: Any) -> datetime:
    if isinstance(value, str) and not value.isdigit():
        return timestamp(value, "updated_at")
    try:
        number = Decimal(value)
    except ArithmeticError:  # decimal.InvalidOperation
        raise NormalizeError("updated_at is not a timestamp") from None
    if not (number.is_finite() and 0 <= number <= _MAX_MS):
        raise NormalizeError("updated_at is out of range")
    ms = int(number)
    return datetime.fromtimestamp(ms // 1000, tz=UTC) + timedelta(milliseconds=ms % 1000)
