"""Pure normalizers: one module per provider, each ``normalize(raw) -> list[PaymentEvent]``.

A normalizer never does I/O and raises only ``NormalizeError``.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.envelope import RawWebhook
from streams.errors import NormalizeError
from streams.model import PaymentEvent, from_epoch_ms
from streams.providers import btcpay, coinbase, coinpayments, jwt, nowpayments, standard

Normalizer = Callable[[RawWebhook], list[PaymentEvent]]

NORMALIZERS: dict[str, Normalizer] = {
    "coinbase": coinbase.normalize,
    "btcpay": btcpay.normalize,
    "nowpayments": nowpayments.normalize,
    "coinpayments": coinpayments.normalize,
    "standard": standard.normalize,
    "jwt": jwt.normalize,
}


def normalize(raw: RawWebhook) -> list[PaymentEvent]:
    """Normalize one raw webhook of any provider; stamps the receipt on every event."""
    try:
        fn = NORMALIZERS[raw.provider]
    except KeyError:
        raise NormalizeError(f"unknown provider {raw.provider!r}") from None
    received = from_epoch_ms(raw.received_at_ms)
    return [e.with_receipt(raw.id, received) for e in fn(raw)]
