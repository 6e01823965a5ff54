"""Writes ``golden_records.json``: the bytes today's code puts on every topic and in the table.

Run ``python -m tests.unit.domain.golden_records_gen``. The file was written by the code
before ``domain.records`` (decision 0090; this script then read table values with
``Entry.decode`` and encoded dead letters with ``orjson``): its inputs are raw Kafka records
through ``streams.flow.process``, ``dead_letter`` arguments and ``RawWebhook`` fields, and
its outputs the bytes. Running it again must leave the file unchanged;
``test_records_golden`` replays the same inputs and requires the same bytes.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from domain.dlq import dead_letter
from domain.records import KIND_CHECKOUT, Entry, RawWebhook, decode_entry, encode
from streams import flow
from testing.traffic import payments, requests
from tests.explicit_settings import unit_settings

GOLDEN = Path(__file__).with_name("golden_records.json")
NOW_MS = 1_790_000_000_000
TTL_MS = 3_600_000
ORIGIN_KEYS = (
    "version",
    "from_status",
    "to_status",
    "first_applied",
    "first_note",
    "first_effective",
    "payment_amount",
    "payment_currency",
)


def b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode()


def unb64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


@dataclass
class Msg:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    topic: str = "webhooks.raw"
    partition: int = 0
    offset: int = 0

    def doc(self) -> dict[str, Any]:
        return {
            "key": b64(self.key),
            "value": b64(self.value),
            "headers": [[k, b64(v)] for k, v in self.headers],
            "partition": self.partition,
            "offset": self.offset,
        }

    @classmethod
    def of(cls, d: dict[str, Any]) -> Msg:
        headers = [(k, unb64(v) or b"") for k, v in d["headers"]]
        return cls(
            unb64(d["key"]), unb64(d["value"]), headers, "webhooks.raw", d["partition"], d["offset"]
        )


class Feed:
    """Raw records as ingest writes them, with consecutive offsets."""

    def __init__(self) -> None:
        self.offset = 0

    def raw(
        self, provider: str, body: bytes, headers: dict[str, str], key: str, kind: str = "webhook"
    ) -> Msg:
        self.offset += 1
        raw = RawWebhook(
            f"raw-{self.offset}",
            provider,
            NOW_MS + self.offset * 1000,
            body,
            headers,
            kind,
            f"req-{self.offset}",
            key,
        )
        return Msg(raw.kafka_key, body, raw.to_kafka_headers(), offset=self.offset)

    def standard(
        self, payment: str, status: str, ts: str, n: int, amount: str | None = "5.00", **data: str
    ) -> Msg:
        doc: dict[str, Any] = {"payment_id": payment, "status": status, "currency": "USDC", **data}
        if amount is not None:
            doc["amount"] = amount
        body = orjson.dumps(
            {"id": f"evt_{payment}_{n}", "type": f"payment.{status}", "timestamp": ts, "data": doc}
        )
        return self.raw(
            "standard", body, {"webhook-id": f"msg_{payment}_{n}"}, f"standard:{payment}"
        )

    def checkout(self, payment: str, amount: str, order: str, currency: str = "USDC") -> Msg:
        body = orjson.dumps(
            {"external_id": payment, "order_id": order, "amount": amount, "currency": currency}
        )
        return self.raw("standard", body, {}, f"standard:{payment}", KIND_CHECKOUT)


def hand_made(feed: Feed) -> list[Msg]:
    """Every status, odd amounts and times, checkouts (one overruled), late and refused events."""
    statuses = [
        "new",
        "pending",
        "confirmed",
        "completed",
        "underpaid",
        "overpaid",
        "expired",
        "failed",
        "refunded",
        "canceled",
    ]
    out = [
        feed.standard(
            f"all-{s}", s, "2026-11-01T10:00:00Z", 0, amount=None if i % 3 == 0 else f"{i}.{i}0"
        )
        for i, s in enumerate(statuses)
    ]
    out += [
        feed.checkout("chk", "12.50", "order-é"),
        feed.checkout("chk", "1E+2", "order-2"),  # a later registration: overruled
        feed.standard("chk", "completed", "2026-11-01T12:00:00.123456+02:00", 1, "12.5"),
        feed.standard("chk", "pending", "2026-11-01T09:59:59.5Z", 0, "0.000000010"),  # out of order
        feed.standard(
            "chk", "completed", "2026-11-01T12:00:00.123456+02:00", 1, "12.5"
        ),  # duplicate
        feed.standard("late", "expired", "2026-11-01T10:00:00Z", 0, None),
        feed.standard(
            "late", "pending", "2026-11-01T11:00:00Z", 1, "3", order_id='o\u2028"\\/\x01'
        ),
        feed.standard("late", "new", "2026-11-01T12:00:00Z", 2),  # impossible: refused
        feed.checkout("over", "10", "order-over"),
        feed.standard("over", "confirmed", "2026-11-01T10:00:00Z", 0, "11"),
        feed.standard("over", "completed", "2026-11-01T10:00:00Z", 1, "9.99"),
    ]
    feed.offset += 1
    out.append(Msg(None, None, [], offset=feed.offset))  # no key, no value, no headers
    feed.offset += 1
    out.append(
        Msg(
            b"standard:x",
            b"{not json",
            [("id", b"r"), ("provider", b"nope"), ("received-at-ms", b"1")],
            offset=feed.offset,
        )
    )
    misrouted = feed.standard("rerouted", "pending", "2026-11-01T10:00:00Z", 0)
    misrouted.key = b"raw-id-key"
    out.append(misrouted)
    return out


def traffic(feed: Feed) -> list[Msg]:
    """Real payloads of every provider, shuffled, with redeliveries."""
    settings = unit_settings()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    pays = payments(20, seed=11, start=start)
    now = (start + timedelta(days=1)).timestamp()
    reqs = requests(pays, settings.providers, seed=11, duplicate_share=0.3, now=now, window=9)
    out = []
    for r in reqs:
        key = f"{r.provider}:{r.payment.external_id}"
        out.append(feed.raw(r.provider, r.body, {k.lower(): v for k, v in r.headers.items()}, key))
    return out


def run_batches(store: dict[bytes, bytes], batches: list[list[Msg]]) -> list[dict[str, Any]]:
    def lookup(key: bytes, _: Any) -> Entry:
        return decode_entry(store.get(key))

    out = []
    for msgs in batches:
        b = flow.process(msgs, lookup, TTL_MS, 1 << 20, NOW_MS)
        for k, w in b.payments.items():
            if w.value is not None:
                store[k] = w.value
        out.append(
            {
                "messages": [m.doc() for m in msgs],
                "values": {
                    k.decode(): None if w.value is None else w.value.decode()
                    for k, w in b.payments.items()
                },
                "snapshots": {k.decode(): w.snapshot.decode() for k, w in b.payments.items()},
                "transitions": [[k.decode(), v.decode()] for k, v in b.transitions],
                "dead": [[k.decode(), v.decode()] for k, v in b.dead],
                "reroute": [[k.decode(), m.offset] for k, m in b.reroute],
            }
        )
    return out


def old_format(feed: Feed) -> tuple[dict[str, str], list[Msg]]:
    """A table value written before origins were kept, and records that meet it."""
    first = [
        feed.standard("old", "pending", "2026-11-01T10:00:00Z", 0),
        feed.standard("old", "confirmed", "2026-11-01T10:01:00Z", 1, "7"),
    ]
    store: dict[bytes, bytes] = {}
    run_batches(store, [first])
    doc = orjson.loads(store[b"standard:old"])
    for e in doc["state"]["events"]:
        for k in ORIGIN_KEYS:
            del e[k]
    old = orjson.dumps(doc)
    later = [first[1], feed.standard("old", "completed", "2026-11-01T10:00:30Z", 2, "7"), first[0]]
    return {"standard:old": old.decode()}, later


def dead_letters() -> list[dict[str, Any]]:
    """``dead_letter`` as ingest, the sinks and notify call it."""
    cases: list[dict[str, Any]] = [
        {
            "stage": "ingest",
            "reason": "unreadable body: é\n\x00" + "x" * 2100,
            "topic": "webhooks.raw",
            "partition": 0,
            "offset": -1,
            "key": b"raw-1",
            "value": b"\xff\x00body",
            "headers": [("id", b"raw-1"), ("h-x", b"")],
            "failed_at_ms": NOW_MS,
            "dead_letter_id": "ingest:raw-1",
        },
        {
            "stage": "sink-postgres",
            "reason": "refused",
            "topic": "payments.state",
            "partition": 3,
            "offset": 42,
            "key": None,
            "value": None,
            "headers": [],
            "failed_at_ms": NOW_MS + 1,
        },
        {
            "stage": "notify",
            "reason": "gave up",
            "topic": "payments.transitions",
            "partition": 1,
            "offset": 7,
            "key": b"k",
            "value": b"{}",
            "headers": [("a", b"1")],
            "failed_at_ms": NOW_MS + 2,
            "attempts": 9,
        },
    ]
    out = []
    for c in cases:
        doc = dead_letter(**c)
        enc = {k: b64(v) if k in ("key", "value") else v for k, v in c.items() if k != "headers"}
        enc["headers"] = [[k, b64(v)] for k, v in c["headers"]]
        out.append({"kwargs": enc, "bytes": encode(doc).decode()})
    return out


def raw_webhooks() -> list[dict[str, Any]]:
    cases = [
        RawWebhook(
            "r1",
            "coinbase",
            NOW_MS,
            b"{}",
            {"x-cc-webhook-signature": "ab", "content-type": "application/json"},
            "webhook",
            "req",
            "coinbase:c1",
        ),
        RawWebhook("r2", "standard", 1, b"", {}, KIND_CHECKOUT, "", ""),
    ]
    return [
        {
            "fields": {
                "id": r.id,
                "provider": r.provider,
                "received_at_ms": r.received_at_ms,
                "body": b64(r.body),
                "headers": dict(r.headers),
                "kind": r.kind,
                "request_id": r.request_id,
                "key": r.key,
            },
            "kafka_key": b64(r.kafka_key),
            "kafka_headers": [[k, b64(v)] for k, v in r.to_kafka_headers()],
        }
        for r in cases
    ]


def generate() -> dict[str, Any]:
    feed = Feed()
    table, later = old_format(feed)
    msgs = hand_made(feed) + traffic(feed) + later
    rng = random.Random(5)
    batches, i = [], 0
    while i < len(msgs):
        n = rng.randrange(1, 12)
        batches.append(msgs[i : i + n])
        i += n
    store = {k.encode(): v.encode() for k, v in table.items()}
    return {
        "table": table,
        "batches": run_batches(store, batches),
        "dead_letters": dead_letters(),
        "raw_webhooks": raw_webhooks(),
    }


if __name__ == "__main__":
    GOLDEN.write_bytes(orjson.dumps(generate(), option=orjson.OPT_INDENT_2) + b"\n")
