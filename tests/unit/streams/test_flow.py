"""``streams.flow.process``, the worker's whole batch step, on plain records (no Kafka, no Faust).

What a batch writes: one table value (the state with its events) and one ``payments.state``
snapshot (the state without its events) per payment, one transition per event, dead letters
with their reason, and records keyed by anything but their payment sent back re-keyed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from domain.records import Entry, RawWebhook
from streams import flow

RECEIVED_MS = 1_790_000_000_000
KEY = b"standard:pay-1"


@dataclass
class Msg:
    key: bytes | None
    value: bytes | None
    headers: Any = field(default_factory=list)
    topic: str = "webhooks.raw"
    partition: int = 0
    offset: int = 0


def event(status: str, n: int, payment: str = "pay-1", key: bytes | None = KEY) -> Msg:
    body = orjson.dumps(
        {
            "type": f"payment.{status}",
            "timestamp": f"2026-11-01T10:00:0{n}Z",
            "data": {"payment_id": payment, "status": status, "amount": "5.00", "currency": "USD"},
        }
    )
    raw = RawWebhook(f"raw-{n}", "standard", RECEIVED_MS + n, body, {"webhook-id": f"msg_{n}"})
    return Msg(key, body, raw.to_kafka_headers(), offset=n)


def run(*msgs: Msg, stored: dict[bytes, Entry] | None = None, limit: int = 1 << 20) -> flow.Batch:
    store = stored or {}
    return flow.process(msgs, lambda k, m: store.get(k, Entry()), 3_600_000, limit, RECEIVED_MS)


def test_a_payment_gets_one_value_one_snapshot_without_events_and_a_transition_per_event() -> None:
    out = run(event("pending", 1), event("completed", 2))
    assert list(out.payments) == [KEY]
    written = out.payments[KEY]
    snapshot = orjson.loads(written.snapshot)
    assert snapshot["status"] == "completed" and snapshot["version"] == 2
    assert "events" not in snapshot and snapshot["event_count"] == 2
    assert written.value is not None
    value = orjson.loads(written.value)
    assert [e["status"] for e in value["state"]["events"]] == ["pending", "completed"]
    assert sorted(value["seen"]) == ["standard:msg_1", "standard:msg_2"]
    moves = [orjson.loads(v) for _, v in out.transitions]
    assert [(t["from_status"], t["to_status"], t["version"]) for t in moves] == [
        ("new", "pending", 1),
        ("pending", "completed", 2),
    ]
    assert out.dead == [] and out.reroute == []


def test_a_redelivery_writes_no_table_value_and_resends_the_original_transition() -> None:
    first = run(event("pending", 1))
    entry = first.payments[KEY].entry
    again = run(event("pending", 1), stored={KEY: entry})
    assert again.payments[KEY].value is None  # nothing changed: no table write
    [(_, sent)], [(_, original)] = again.transitions, first.transitions
    resent, was = orjson.loads(sent), orjson.loads(original)
    assert resent["outcome"] == "duplicate" and was["outcome"] == "applied"
    same = {k for k in was if k not in {"outcome", "processed_at_ms"}}
    assert {k: resent[k] for k in same} == {k: was[k] for k in same}


def test_unreadable_and_misrouted_records_and_an_oversized_state() -> None:
    junk = Msg(KEY, b"{not json", event("pending", 1).headers, offset=7)
    misrouted = event("pending", 2, key=b"some-uuid")
    out = run(junk, misrouted)
    [(key, letter)] = out.dead
    doc = orjson.loads(letter)
    assert key == KEY and doc["stage"] == "normalize" and doc["source"]["offset"] == 7
    assert out.reroute == [(KEY, misrouted)] and out.payments == {}

    tiny = run(event("pending", 1), event("completed", 2), limit=200)
    assert tiny.payments == {} and tiny.transitions == []
    assert [orjson.loads(v)["reason"].split(":")[0] for _, v in tiny.dead] == ["StateLimit"] * 2
