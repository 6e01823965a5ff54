"""Pure parts of the Postgres sink."""

from __future__ import annotations

from typing import Any

import orjson

from domain.records import TRANSITION, Transition
from sinks.postgres import history_rows


def transition(external_id: str, version: int, event_id: str, **extra: Any) -> Transition:
    doc = {
        "event_id": event_id,
        "provider": "jwt",
        "external_id": external_id,
        "status": "pending",
        "effective_status": "pending",
        "from_status": "new",
        "to_status": "pending",
        "applied": True,
        "note": "",
        "provider_status": "payment.pending",
        "amount": "1",
        "currency": "USDC",
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "received_at": None,
        "version": version,
        "outcome": "applied",
        **extra,
    }
    return TRANSITION.decode(orjson.dumps(doc))


def test_one_row_per_event_id_the_first_transition_wins() -> None:
    """A batch where two payments carry the same event id (a sender's bug or a hostile
    sender) once crashed the sink: ON CONFLICT DO UPDATE cannot touch a row twice. The first
    transition of an event is the one as first applied; a re-sent one only repeats it."""
    cols = history_rows(
        [
            transition("p-2", 1, "jwt:1"),
            transition("p-2", 2, "jwt:2"),
            transition("p-1", 3, "jwt:1"),
            transition("p-2", 1, "jwt:1", outcome="duplicate"),
        ]
    )
    ids, external_ids, versions = cols[0], cols[2], cols[12]
    assert sorted(ids) == ["jwt:1", "jwt:2"]
    assert external_ids[ids.index("jwt:1")] == "p-2"
    assert versions == [1, 2]


def test_a_row_carries_the_version_and_statuses_its_event_produced() -> None:
    cols = history_rows([transition("p", 4, "jwt:9", from_status="pending", to_status="completed")])
    row = [c[0] for c in cols]
    assert row[12:15] == [4, "pending", "completed"]
    assert row[15] is None  # no provider reference


def test_the_reference_is_kept_when_the_transition_carries_one() -> None:
    cols = history_rows([transition("p", 1, "coinbase:1", reference="ABCD1234")])
    assert cols[15] == ["ABCD1234"]
