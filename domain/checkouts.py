"""The checkout registration written by ``POST /checkouts``, read back from the raw topic."""

from __future__ import annotations

from domain.errors import NormalizeError
from domain.model import from_epoch_ms
from domain.providers._json import decimal, load_object, text
from domain.records import Checkout, RawWebhook


def parse_checkout(raw: RawWebhook) -> Checkout:
    doc = load_object(raw.body)
    currency = text(doc, "currency").upper()
    if not currency.isalnum() or len(currency) > 16:
        raise NormalizeError("currency is not a currency code")
    return Checkout(
        provider=raw.provider,
        external_id=text(doc, "external_id"),
        order_id=text(doc, "order_id"),
        amount=decimal(doc.get("amount"), "amount"),
        currency=currency,
        created_at=from_epoch_ms(raw.received_at_ms),
    )
