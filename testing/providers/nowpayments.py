"""NOWPayments IPN: ``x-nowpayments-sig`` = hex HMAC-SHA512 over the JSON re-serialized with
sorted keys; no event id of its own (the normalizer derives one)."""

from __future__ import annotations

import json
from decimal import Decimal

from pipeline.settings import ProviderSettings
from testing.builder import Builder, Signing, first_secret
from testing.encode import FUNDED, JSON, compact_json, digest_id, epoch_ms, hex_hmac
from testing.sample import SampleEvent

#: canonical status -> payment_status
STATUSES = {
    "new": "waiting",
    "pending": "confirming",
    "confirmed": "confirmed",
    "completed": "finished",
    "underpaid": "partially_paid",
    "failed": "failed",
    "refunded": "refunded",
    "expired": "expired",
}


def body(ev: SampleEvent, attempt: int, providers: ProviderSettings) -> bytes:
    amount = float(ev.amount)
    if Decimal(repr(amount)) != ev.amount:
        raise ValueError("nowpayments amounts are JSON numbers: at most 15 significant digits")
    currency = ev.currency.lower()
    pid = ev.external_id
    doc = {
        "payment_id": int(pid) if pid.isdigit() and str(int(pid)) == pid else pid,
        "parent_payment_id": None,
        "invoice_id": None,
        "payment_status": STATUSES[ev.status],
        "pay_address": "T" + digest_id("np-address", pid, n=33),
        "payin_extra_id": None,
        "price_amount": amount,
        "price_currency": currency,
        "pay_amount": amount,
        "actually_paid": amount if ev.status in FUNDED else 0,
        "actually_paid_at_fiat": 0,
        "pay_currency": currency,
        "order_id": ev.order_id,
        "order_description": f"Order {ev.order_id}",
        "purchase_id": str(int(digest_id("np-purchase", pid, n=8), 16)),
        "updated_at": epoch_ms(ev.occurred_at),
        "outcome_amount": amount,
        "outcome_currency": currency,
        "payment_extra_ids": None,
    }
    return compact_json(doc)


def headers(ev: SampleEvent, raw: bytes, signing: Signing) -> dict[str, str]:
    # NOWPayments' Python reference: keys sorted recursively, no spaces, ASCII escapes
    signed = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    secret = first_secret(signing.providers, ev.provider)
    return {"content-type": JSON, "x-nowpayments-sig": hex_hmac(secret, signed, "sha512")}


def event_id(ev: SampleEvent) -> str:
    return f"nowpayments:{ev.external_id}:{STATUSES[ev.status]}:{epoch_ms(ev.occurred_at)}"


BUILDER = Builder(tuple(STATUSES), body, headers, event_id)
