"""Coinbase Commerce: an event around the whole charge, ``X-CC-Webhook-Signature`` = hex
HMAC-SHA256 of the body; a retry raises ``attempt_number``."""

from __future__ import annotations

from datetime import timedelta

from pipeline.settings import ProviderSettings
from testing.builder import Builder, Signing, first_secret
from testing.encode import (
    FUNDED,
    JSON,
    compact_json,
    digest_id,
    digest_uuid,
    hex_hmac,
    iso,
    plain,
)
from testing.sample import SampleEvent

#: canonical status -> (event type, the last timeline entry's (status, context) or None)
EVENTS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "new": ("charge:created", None),
    "pending": ("charge:pending", None),
    "completed": ("charge:confirmed", None),
    "expired": ("charge:failed", ("EXPIRED", "")),
    "canceled": ("charge:failed", ("CANCELED", "")),
    "underpaid": ("charge:failed", ("UNRESOLVED", "UNDERPAID")),
    "overpaid": ("charge:failed", ("UNRESOLVED", "OVERPAID")),
    "failed": ("charge:failed", ("UNRESOLVED", "OTHER")),
}


def body(ev: SampleEvent, attempt: int, providers: ProviderSettings) -> bytes:
    etype, last = EVENTS[ev.status]
    at = iso(ev.occurred_at)
    code = digest_id("code", ev.external_id, n=8).upper()
    money = {"amount": plain(ev.amount), "currency": ev.currency}
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
            "transaction_id": "0x" + digest_id("tx", ev.external_id, n=64),
            "status": "CONFIRMED" if ev.status == "completed" else "PENDING",
            "value": {"local": money, "crypto": {"amount": plain(ev.amount), "currency": "USDC"}},
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
        "expires_at": iso(ev.occurred_at + timedelta(hours=1)),
        "pricing_type": "fixed_price",
        "pricing": {"local": money},
        "metadata": {"order_id": ev.order_id},
        "timeline": timeline,
        "payments": payments if ev.status in FUNDED else [],
    }
    event = {"id": ev.event_id, "resource": "event", "type": etype, "api_version": "2018-03-22"}
    return compact_json(
        {
            "id": digest_uuid("coinbase-delivery", ev.event_id, attempt),
            "scheduled_for": at,
            "attempt_number": attempt,
            "event": {**event, "created_at": at, "data": charge},
        }
    )


def headers(ev: SampleEvent, raw: bytes, signing: Signing) -> dict[str, str]:
    secret = first_secret(signing.providers, ev.provider)
    return {"content-type": JSON, "x-cc-webhook-signature": hex_hmac(secret, raw, "sha256")}


BUILDER = Builder(tuple(EVENTS), body, headers)
