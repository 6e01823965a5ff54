"""Which deliveries one transition record makes, and their bodies: pure.

A delivery is one (endpoint, transition) pair. Its ``webhook-id`` is derived from the
payment, the transition's version and the endpoint only, and its body from the transition's
own fields only (the event's provider time, not a clock), so a re-sent or replayed transition
makes the same delivery, byte for byte, and the outbox keeps the first (decision 0050).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from notify.errors import BadTransition


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    secrets: tuple[str, ...]
    statuses: frozenset[str] | None  # None: every status
    timeout_s: float = 10.0
    max_in_flight: int = 8

    def wants(self, status: str) -> bool:
        return self.statuses is None or status in self.statuses


@dataclass(frozen=True, slots=True)
class Delivery:
    webhook_id: str
    endpoint: str
    provider: str
    external_id: str
    version: int
    status: str
    body: bytes
    transition_ms: int = 0  # when the transition was published (its Kafka timestamp)


def webhook_id(provider: str, external_id: str, version: int, endpoint: str) -> str:
    """Stable for one transition and endpoint: every retry, re-send and replay carries it."""
    digest = hashlib.sha256(orjson.dumps([provider, external_id, version, endpoint])).hexdigest()
    return f"msg_{digest[:32]}"


def body(t: dict[str, Any]) -> bytes:
    """``{"type": "payment.<status>", "timestamp", "data": {...}}``; amounts decimal strings."""
    status = t["to_status"]
    doc = {
        "type": f"payment.{status}",
        "timestamp": t["occurred_at"],
        "data": {
            "provider": t["provider"],
            "external_id": t["external_id"],
            "status": status,
            "previous_status": t["from_status"],
            "version": t["version"],
            "amount": t.get("payment_amount"),
            "currency": t.get("payment_currency"),
            "order_id": t.get("order_id"),
        },
    }
    return orjson.dumps(doc)


def parse(value: bytes | None) -> dict[str, Any]:
    """A transition record, checked for the fields a notification needs."""
    try:
        t = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise BadTransition(f"not JSON: {exc}") from None
    if not isinstance(t, dict):
        raise BadTransition("not a JSON object")
    for name in ("provider", "external_id", "from_status", "to_status", "occurred_at"):
        if not isinstance(t.get(name), str):
            raise BadTransition(f"field {name} missing or not text")
    if not isinstance(t.get("version"), int) or isinstance(t["version"], bool):
        raise BadTransition("field version missing or not an integer")
    amount = t.get("payment_amount")
    if amount is not None and not isinstance(amount, str):
        raise BadTransition("payment_amount is not a decimal string")
    return t


def deliveries(
    t: dict[str, Any], endpoints: Sequence[Endpoint], transition_ms: int = 0
) -> list[Delivery]:
    """One delivery per endpoint that wants this transition; none unless the status changed."""
    if t["to_status"] == t["from_status"]:
        return []
    payload = body(t)
    return [
        Delivery(
            webhook_id(t["provider"], t["external_id"], t["version"], e.url),
            e.url,
            t["provider"],
            t["external_id"],
            t["version"],
            t["to_status"],
            payload,
            transition_ms,
        )
        for e in endpoints
        if e.wants(t["to_status"])
    ]
