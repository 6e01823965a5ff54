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

import msgspec
import orjson

from domain.model import iso
from domain.records import TRANSITION, Transition
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


def body(t: Transition) -> bytes:
    """``{"type": "payment.<status>", "timestamp", "data": {...}}``; amounts decimal strings."""
    status = t.to_status.value
    doc = {
        "type": f"payment.{status}",
        "timestamp": iso(t.occurred_at),
        "data": {
            "provider": t.provider,
            "external_id": t.external_id,
            "status": status,
            "previous_status": t.from_status.value,
            "version": t.version,
            "amount": None if t.payment_amount is None else str(t.payment_amount),
            "currency": t.payment_currency,
            "order_id": t.order_id,
        },
    }
    return orjson.dumps(doc)


def parse(value: bytes | None) -> Transition:
    """A transition record; ``BadTransition`` when the value is not one."""
    try:
        return TRANSITION.decode(value or b"")
    except msgspec.DecodeError as exc:
        raise BadTransition(f"not a transition: {exc}") from None


def deliveries(
    t: Transition, endpoints: Sequence[Endpoint], transition_ms: int = 0
) -> list[Delivery]:
    """One delivery per endpoint that wants this transition; none unless the status changed."""
    if t.to_status == t.from_status:
        return []
    payload, status = body(t), t.to_status.value
    return [
        Delivery(
            webhook_id(t.provider, t.external_id, t.version, e.url),
            e.url,
            t.provider,
            t.external_id,
            t.version,
            status,
            payload,
            transition_ms,
        )
        for e in endpoints
        if e.wants(status)
    ]
