"""CoinPayments legacy IPN: a form body, ``HMAC`` = hex HMAC-SHA512 of it; ``merchant`` is the
configured merchant id."""

from __future__ import annotations

from urllib.parse import urlencode

from pipeline.settings import ProviderSettings
from testing.builder import Builder, Signing, first_secret
from testing.encode import FORM, FUNDED, hex_hmac, plain
from testing.sample import SampleEvent

#: canonical status -> (numeric status, status_text)
STATUSES: dict[str, tuple[int, str]] = {
    "pending": (0, "Waiting for buyer funds..."),
    "confirmed": (1, "We have confirmed coin reception from the buyer"),
    "completed": (100, "Complete"),
    "canceled": (-1, "Cancelled / Timed Out"),
    "refunded": (-2, "PayPal Refund or Reversal"),
}


def body(ev: SampleEvent, attempt: int, providers: ProviderSettings) -> bytes:
    code, text = STATUSES[ev.status]
    amount = plain(ev.amount)
    fields = {
        "ipn_version": "1.0",
        "ipn_type": "api",
        "ipn_mode": "hmac",
        "ipn_id": ev.event_id,
        "merchant": providers.coinpayments.merchant_id,
        "status": str(code),
        "status_text": text,
        "txn_id": ev.external_id,
        "currency1": ev.currency,
        "currency2": ev.currency,
        "amount1": amount,
        "amount2": amount,
        "fee": "0",
        "buyer_name": "CoinPayments API",
        "item_name": f"Order {ev.order_id}",
        "invoice": ev.order_id,
        "received_amount": amount if ev.status in FUNDED else "0",
        "received_confirms": "3" if ev.status in ("confirmed", "completed") else "0",
    }
    return urlencode(fields).encode()


def headers(ev: SampleEvent, raw: bytes, signing: Signing) -> dict[str, str]:
    secret = first_secret(signing.providers, ev.provider)
    return {"content-type": FORM, "hmac": hex_hmac(secret, raw, "sha512")}


BUILDER = Builder(tuple(STATUSES), body, headers)
