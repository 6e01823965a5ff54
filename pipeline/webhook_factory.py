"""Realistic, correctly signed webhook requests for every provider.

Used by the tests, the demo traffic of ``make run`` and load generation. Each provider's payload
has that provider's real shape and field names; the canonical status is mapped back to the
provider's own event type or status. Header names are lower case, as ingest sees them.
Deterministic: the same SampleEvent (and ``now``) always gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import jwt

from pipeline.settings import ProviderSettings
from streams.model import Status

JSON = "application/json"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class SampleEvent:
    """One provider event about one payment. ``event_id`` is the provider's own event id
    (BTCPay's first delivery id, CoinPayments' ipn_id, ...); NOWPayments has none."""

    provider: str
    external_id: str
    status: str  # canonical status
    amount: Decimal
    currency: str
    occurred_at: datetime
    event_id: str
    order_id: str


# canonical status -> the provider's own event type / status (and flags)
COINBASE: dict[str, tuple[str, tuple[str, str] | None]] = {
    "new": ("charge:created", None),
    "pending": ("charge:pending", None),
    "completed": ("charge:confirmed", None),
    "expired": ("charge:failed", ("EXPIRED", "")),
    "canceled": ("charge:failed", ("CANCELED", "")),
    "underpaid": ("charge:failed", ("UNRESOLVED", "UNDERPAID")),
    "overpaid": ("charge:failed", ("UNRESOLVED", "OVERPAID")),
    "failed": ("charge:failed", ("UNRESOLVED", "OTHER")),
}
BTCPAY: dict[str, tuple[str, dict[str, bool]]] = {
    "new": ("InvoiceCreated", {}),
    "pending": ("InvoiceReceivedPayment", {"afterExpiration": False}),
    "confirmed": ("InvoiceProcessing", {"overPaid": False}),
    "completed": ("InvoiceSettled", {"manuallyMarked": False, "overPaid": False}),
    "overpaid": ("InvoiceSettled", {"manuallyMarked": False, "overPaid": True}),
    "expired": ("InvoiceExpired", {"partiallyPaid": False}),
    "underpaid": ("InvoiceExpired", {"partiallyPaid": True}),
    "failed": ("InvoiceInvalid", {"manuallyMarked": False}),
}
NOWPAYMENTS = {
    "new": "waiting",
    "pending": "confirming",
    "confirmed": "confirmed",
    "completed": "finished",
    "underpaid": "partially_paid",
    "failed": "failed",
    "refunded": "refunded",
    "expired": "expired",
}
COINPAYMENTS: dict[str, tuple[int, str]] = {
    "pending": (0, "Waiting for buyer funds..."),
    "confirmed": (1, "We have confirmed coin reception from the buyer"),
    "completed": (100, "Complete"),
    "canceled": (-1, "Cancelled / Timed Out"),
    "refunded": (-2, "PayPal Refund or Reversal"),
}
CANONICAL = tuple(s.value for s in Status)
SUPPORTED: dict[str, tuple[str, ...]] = {
    "coinbase": tuple(COINBASE),
    "btcpay": tuple(BTCPAY),
    "nowpayments": tuple(NOWPAYMENTS),
    "coinpayments": tuple(COINPAYMENTS),
    "standard": tuple(CANONICAL),
    "jwt": tuple(CANONICAL),
}
_FUNDED = {"pending", "confirmed", "completed", "underpaid", "overpaid", "refunded"}


def signed_request(
    ev: SampleEvent,
    providers: ProviderSettings,
    now: float | None = None,
    *,
    jwt_signer: tuple[str, str | bytes] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` of ``ev`` as its provider sends it, signed with the first configured
    secret (for ``jwt``: the first HS256 key, or ``jwt_signer=(alg, private key PEM)``).
    ``now`` (unix seconds, default the current time) stamps the timed schemes."""
    return _request(ev, providers, now, 1, jwt_signer)


def redelivery(
    ev: SampleEvent,
    providers: ProviderSettings,
    now: float | None = None,
    attempt: int = 2,
    *,
    jwt_signer: tuple[str, str | bytes] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The provider's retry of the same event: BTCPay sends a new ``deliveryId`` with
    ``originalDeliveryId`` and ``isRedelivery``, Coinbase a higher ``attempt_number``, the timed
    schemes a fresh signature. The dedup id is always that of the first delivery."""
    return _request(ev, providers, now, attempt, jwt_signer)


def expected_event_id(ev: SampleEvent) -> str:
    """The dedup id the normalizer derives from this event's requests."""
    if ev.provider == "nowpayments":
        return f"nowpayments:{ev.external_id}:{NOWPAYMENTS[ev.status]}:{_ms(ev.occurred_at)}"
    return f"{ev.provider}:{ev.event_id}"


def _request(
    ev: SampleEvent,
    providers: ProviderSettings,
    now: float | None,
    attempt: int,
    jwt_signer: tuple[str, str | bytes] | None,
) -> tuple[bytes, dict[str, str]]:
    if ev.status not in SUPPORTED.get(ev.provider, ()):
        raise ValueError(f"{ev.provider} has no event for status {ev.status!r}")
    if ev.amount < 0 or not ev.amount.is_finite():
        raise ValueError("amount must be a finite, non-negative decimal")
    when = time.time() if now is None else now
    body = _BODIES[ev.provider](ev, attempt, providers)
    if ev.provider == "coinpayments":
        return body, {"content-type": FORM, "hmac": _hex(_secret(providers, ev), body, "sha512")}
    headers = {"content-type": JSON}
    if ev.provider == "coinbase":
        headers["x-cc-webhook-signature"] = _hex(_secret(providers, ev), body, "sha256")
    elif ev.provider == "btcpay":
        headers["btcpay-sig"] = "sha256=" + _hex(_secret(providers, ev), body, "sha256")
    elif ev.provider == "nowpayments":
        # NOWPayments' Python reference: keys sorted recursively, no spaces, ASCII escapes
        signed = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        headers["x-nowpayments-sig"] = _hex(_secret(providers, ev), signed.encode(), "sha512")
    elif ev.provider == "standard":
        key = base64.b64decode(_secret(providers, ev).decode().removeprefix("whsec_"))
        ts = str(int(when))
        mac = hmac.new(key, f"{ev.event_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        headers["webhook-id"] = ev.event_id
        headers["webhook-timestamp"] = ts
        headers["webhook-signature"] = "v1," + base64.b64encode(mac).decode()
    else:  # jwt
        alg, signing_key = jwt_signer or _hs256_key(providers)
        claims = {"iat": int(when), "request_body_sha256": hashlib.sha256(body).hexdigest()}
        headers["authorization"] = "Bearer " + jwt.encode(claims, signing_key, algorithm=alg)
    return body, headers


def _secret(providers: ProviderSettings, ev: SampleEvent) -> bytes:
    group = getattr(providers, ev.provider)
    secrets = [s.get_secret_value() for s in group.secrets if s.get_secret_value()]
    if not secrets:
        raise ValueError(f"{ev.provider}: no secret configured")
    return str(secrets[0]).encode()


def _hs256_key(providers: ProviderSettings) -> tuple[str, str | bytes]:
    for key in providers.jwt.keys:
        if key.alg == "HS256" and key.secret is not None and key.secret.get_secret_value():
            return "HS256", key.secret.get_secret_value()
    raise ValueError("jwt: no HS256 key configured; pass jwt_signer=(alg, private key PEM)")


def _hex(secret: bytes, message: bytes, digest: str) -> str:
    return hmac.new(secret, message, digest).hexdigest()


def _id(*parts: object, n: int = 32) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:n]


def _uuid(*parts: object) -> str:
    return str(uuid.UUID(_id(*parts)))


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ms(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(milliseconds=1)


def _plain(amount: Decimal) -> str:
    return format(amount, "f")


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _coinbase(ev: SampleEvent, attempt: int, providers: ProviderSettings) -> bytes:
    etype, last = COINBASE[ev.status]
    at = _iso(ev.occurred_at)
    code = _id("code", ev.external_id, n=8).upper()
    money = {"amount": _plain(ev.amount), "currency": ev.currency}
    timeline = [{"time": at, "status": "NEW"}]
    if ev.status in ("pending", "completed"):
        timeline.append({"time": at, "status": "PENDING"})
    if ev.status == "completed":
        timeline.append({"time": at, "status": "COMPLETED"})
    if last is not None:
        timeline.append(
            {"time": at, "status": last[0], **({"context": last[1]} if last[1] else {})}
        )
    payments = [
        {
            "network": "ethereum",
            "transaction_id": "0x" + _id("tx", ev.external_id, n=64),
            "status": "CONFIRMED" if ev.status == "completed" else "PENDING",
            "value": {"local": money, "crypto": {"amount": _plain(ev.amount), "currency": "USDC"}},
        }
    ]
    charge = {
        "id": ev.external_id,
        "code": code,
        "resource": "charge",
        "name": f"Order {ev.order_id}",
        "description": "Checkout",
        "hosted_url": f"https://commerce.coinbase.com/charges/{code}",
        "created_at": at,
        "expires_at": _iso(ev.occurred_at + timedelta(hours=1)),
        "pricing_type": "fixed_price",
        "pricing": {"local": money},
        "metadata": {"order_id": ev.order_id},
        "timeline": timeline,
        "payments": payments if ev.status in _FUNDED else [],
    }
    event = {"id": ev.event_id, "resource": "event", "type": etype, "api_version": "2018-03-22"}
    return _json(
        {
            "id": _uuid("coinbase-delivery", ev.event_id, attempt),
            "scheduled_for": at,
            "attempt_number": attempt,
            "event": {**event, "created_at": at, "data": charge},
        }
    )


def _btcpay(ev: SampleEvent, attempt: int, providers: ProviderSettings) -> bytes:
    etype, flags = BTCPAY[ev.status]
    unix = int(ev.occurred_at.timestamp())
    delivery = ev.event_id if attempt == 1 else _id("btcpay-delivery", ev.event_id, attempt, n=22)
    doc: dict[str, Any] = {
        "deliveryId": delivery,
        "webhookId": _id("btcpay-webhook", n=22),
        "originalDeliveryId": ev.event_id,
        "isRedelivery": attempt > 1,
        "type": etype,
        "timestamp": unix,
        "storeId": _id("btcpay-store", n=44),
        "invoiceId": ev.external_id,
        "metadata": {"orderId": ev.order_id},
        **flags,
    }
    if etype == "InvoiceReceivedPayment":
        doc["paymentMethodId"] = f"{ev.currency}-CHAIN"
        doc["payment"] = {
            "id": _id("btcpay-tx", ev.external_id, n=64) + "-0",
            "receivedDate": unix,
            "value": _plain(ev.amount),
            "fee": "0.0",
            "status": "Processing",
            "destination": "bc1q" + _id("btcpay-address", ev.external_id, n=38),
        }
    return _json(doc)


def _nowpayments(ev: SampleEvent, attempt: int, providers: ProviderSettings) -> bytes:
    amount = float(ev.amount)
    if Decimal(repr(amount)) != ev.amount:
        raise ValueError("nowpayments amounts are JSON numbers: at most 15 significant digits")
    currency = ev.currency.lower()
    pid = ev.external_id
    doc = {
        "payment_id": int(pid) if pid.isdigit() and str(int(pid)) == pid else pid,
        "parent_payment_id": None,
        "invoice_id": None,
        "payment_status": NOWPAYMENTS[ev.status],
        "pay_address": "T" + _id("np-address", pid, n=33),
        "payin_extra_id": None,
        "price_amount": amount,
        "price_currency": currency,
        "pay_amount": amount,
        "actually_paid": amount if ev.status in _FUNDED else 0,
        "actually_paid_at_fiat": 0,
        "pay_currency": currency,
        "order_id": ev.order_id,
        "order_description": f"Order {ev.order_id}",
        "purchase_id": str(int(_id("np-purchase", pid, n=8), 16)),
        "updated_at": _ms(ev.occurred_at),
        "outcome_amount": amount,
        "outcome_currency": currency,
        "payment_extra_ids": None,
    }
    return _json(doc)


def _coinpayments(ev: SampleEvent, attempt: int, providers: ProviderSettings) -> bytes:
    code, text = COINPAYMENTS[ev.status]
    amount = _plain(ev.amount)
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
        "received_amount": amount if ev.status in _FUNDED else "0",
        "received_confirms": "3" if ev.status in ("confirmed", "completed") else "0",
    }
    return urlencode(fields).encode()


def _generic(ev: SampleEvent, attempt: int, providers: ProviderSettings) -> bytes:
    data = {
        "payment_id": ev.external_id,
        "status": ev.status,
        "amount": _plain(ev.amount),
        "currency": ev.currency,
        "order_id": ev.order_id,
    }
    return _json(
        {
            "id": ev.event_id,
            "type": f"payment.{ev.status}",
            "timestamp": _iso(ev.occurred_at),
            "data": data,
        }
    )


_BODIES: dict[str, Callable[[SampleEvent, int, ProviderSettings], bytes]] = {
    "coinbase": _coinbase,
    "btcpay": _btcpay,
    "nowpayments": _nowpayments,
    "coinpayments": _coinpayments,
    "standard": _generic,
    "jwt": _generic,
}
