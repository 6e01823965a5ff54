"""Pure parts of the Postgres sink."""

from __future__ import annotations

from typing import Any

from sinks.postgres import event_rows


def snapshot(external_id: str, version: int, *event_ids: str) -> dict[str, Any]:
    event = {
        "provider": "jwt",
        "external_id": external_id,
        "status": "pending",
        "effective": "pending",
        "applied": True,
        "note": "",
        "provider_status": "payment.pending",
        "amount": "1",
        "currency": "USDC",
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "received_at": None,
    }
    return {"version": version, "events": [{**event, "event_id": e} for e in event_ids]}


def test_one_row_per_event_id_even_when_two_payments_share_it() -> None:
    """A batch where two payments carry the same event id (a sender's bug or a hostile
    sender) once crashed the sink: ON CONFLICT DO UPDATE cannot touch a row twice."""
    cols = event_rows([snapshot("p-2", 7, "jwt:1", "jwt:2"), snapshot("p-1", 3, "jwt:1")])
    ids, external_ids, versions = cols[0], cols[2], cols[12]
    assert sorted(ids) == ["jwt:1", "jwt:2"]
    assert external_ids[ids.index("jwt:1")] == "p-2"  # the newer snapshot's row
    assert versions[ids.index("jwt:1")] == 7
