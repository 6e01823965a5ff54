"""The project's own generic event, the body of ``standard`` and ``jwt``: every canonical
status, amounts as decimal strings."""

from __future__ import annotations

from domain.model import Status
from pipeline.settings import ProviderSettings
from testing.encode import compact_json, iso, plain
from testing.sample import SampleEvent

STATUSES = tuple(s.value for s in Status)


def body(ev: SampleEvent, attempt: int, providers: ProviderSettings) -> bytes:
    data = {
        "payment_id": ev.external_id,
        "status": ev.status,
        "amount": plain(ev.amount),
        "currency": ev.currency,
        "order_id": ev.order_id,
    }
    return compact_json(
        {
            "id": ev.event_id,
            "type": f"payment.{ev.status}",
            "timestamp": iso(ev.occurred_at),
            "data": data,
        }
    )
