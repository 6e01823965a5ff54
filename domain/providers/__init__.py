"""Pure normalizers: one module per provider, each ``normalize(raw) -> list[PaymentEvent]``.

A normalizer never does I/O and raises only ``NormalizeError``.
"""

from __future__ import annotations

from collections.abc import Callable

from domain.errors import NormalizeError
from domain.model import from_epoch_ms, transaction_key
from domain.providers import btcpay, coinbase, coinpayments, jwt, nowpayments, standard
from domain.providers._json import load_object, text
from domain.records import KIND_CHECKOUT, PaymentEvent, RawWebhook

Normalizer = Callable[[RawWebhook], list[PaymentEvent]]
PaymentId = Callable[[bytes], str]

NORMALIZERS: dict[str, Normalizer] = {
    "coinbase": coinbase.normalize,
    "btcpay": btcpay.normalize,
    "nowpayments": nowpayments.normalize,
    "coinpayments": coinpayments.normalize,
    "standard": standard.normalize,
    "jwt": jwt.normalize,
}


PAYMENT_IDS: dict[str, PaymentId] = {
    "coinbase": coinbase.payment_id,
    "btcpay": btcpay.payment_id,
    "nowpayments": nowpayments.payment_id,
    "coinpayments": coinpayments.payment_id,
    "standard": standard.payment_id,
    "jwt": standard.payment_id,
}


def payment_key(provider: str, kind: str, body: bytes) -> str:
    """``provider:external_id`` of the payment a raw request is about, the partition key of
    the raw topic, read with the same functions the normalizers use; ``NormalizeError`` when
    the body does not say (the record is then keyed by its id and dead-lettered downstream)."""
    if kind == KIND_CHECKOUT:
        return transaction_key(provider, text(load_object(body), "external_id"))
    try:
        fn = PAYMENT_IDS[provider]
    except KeyError:
        raise NormalizeError(f"unknown provider {provider!r}") from None
    return transaction_key(provider, fn(body))


def normalize(raw: RawWebhook) -> list[PaymentEvent]:
    """Normalize one raw webhook of any provider; stamps the receipt on every event."""
    try:
        fn = NORMALIZERS[raw.provider]
    except KeyError:
        raise NormalizeError(f"unknown provider {raw.provider!r}") from None
    received = from_epoch_ms(raw.received_at_ms)
    return [e.with_receipt(raw.id, received) for e in fn(raw)]
