"""Micro-benchmark of the records (decision 0090): encode and decode per record kind, a
sink's decode plus row per record, and the stream step per raw record, in µs, on one core.

``python -m bench.records_micro`` prints JSON. It also runs on a checkout from before
``domain.records`` (copy this file there): the codecs are then that code's ``to_dict`` and
``orjson``, so both sides measure the same inputs the way each version does the work.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import import_module
from typing import Any

import orjson
from msgspec.structs import replace

from domain import machine
from domain.dlq import dead_letter
from domain.model import Status
from sinks.clickhouse import event_row
from sinks.postgres import newest_snapshots, tx_rows
from streams import flow
from testing.traffic import payments, requests
from tests.explicit_settings import unit_settings

#: a checkout from before decision 0090 kept its records in domain.model and domain.state
BEFORE_0090 = hasattr(import_module("domain.model"), "PaymentEvent")


def _api() -> tuple[Any, Any, Any]:
    """``RawWebhook``, ``PaymentEvent`` and the table entry, where each version keeps them."""
    if BEFORE_0090:
        before = ("domain.envelope", "domain.model", "domain.step")
        envelope, model, step = (import_module(m) for m in before)
        return envelope.RawWebhook, model.PaymentEvent, step.Entry
    return _records.RawWebhook, _records.PaymentEvent, _records.Entry


_records: Any = None if BEFORE_0090 else import_module("domain.records")
RawWebhook, PaymentEvent, Entry = _api()
NOW_MS = 1_790_000_000_000
DELIVERY = {
    "delivery_id": "raw-1",
    "delivery_received_at_ms": NOW_MS,
    "processed_at_ms": NOW_MS,
    "outcome": "applied",
}
Codec = dict[str, Callable[[Any], Any]]


def codecs() -> Codec:
    """What each version does to write and read each record."""
    if BEFORE_0090:
        return {
            "entry.encode": lambda e: e.encode(),
            "entry.decode": Entry.decode,
            "snapshot.encode": lambda s: orjson.dumps(s.snapshot()),
            "snapshot.decode": orjson.loads,
            "transition.encode": lambda t: orjson.dumps({**t.to_dict(), **DELIVERY}),
            "transition.decode": orjson.loads,
            "dead_letter.encode": lambda d: orjson.dumps(dead_letter(**d)),
            "dead_letter.decode": orjson.loads,
        }
    return {
        "entry.encode": _records.encode,
        "entry.decode": _records.decode_entry,
        "snapshot.encode": lambda s: _records.encode(s.snapshot()),
        "snapshot.decode": _records.SNAPSHOT.decode,
        "transition.encode": lambda t: _records.encode(replace(t, **DELIVERY)),
        "transition.decode": _records.TRANSITION.decode,
        "dead_letter.encode": lambda d: _records.encode(dead_letter(**d)),
        "dead_letter.decode": _records.DEAD_LETTER.decode,
    }


def per_call_us(fn: Callable[[Any], Any], items: list[Any], rounds: int = 7) -> float:
    """Median over ``rounds`` of the mean time of one call over ``items``."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for x in items:
            fn(x)
        times.append((time.perf_counter() - start) / len(items))
    return round(statistics.median(times) * 1e6, 2)


def state_of(n: int) -> tuple[Any, Any]:
    """A payment with ``n`` events (amounts, receipts, a late one), and its last transition."""
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    state: Any = None
    effects: list[Any] = []
    for i in range(n):
        status = (Status.PENDING, Status.CONFIRMED, Status.COMPLETED)[min(i, 2)]
        e = PaymentEvent(
            f"coinbase:e{i}", "coinbase", "ch-1", status, t0 + timedelta(seconds=n - i),
            "charge:pending", Decimal("12.50"), "USDC", "order-1", t0 + timedelta(minutes=i),
            f"raw-{i}", True, "CODE1234",
        )  # fmt: skip
        state, effects = machine.apply(state, e)
    return state, effects[0]


def raw_messages(count: int) -> list[Any]:
    """Signed traffic of every provider, shuffled, with redeliveries, as raw Kafka records."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    pays = payments(count, seed=3, start=start)
    now = (start + timedelta(days=1)).timestamp()
    out = []
    for i, q in enumerate(requests(pays, unit_settings().providers, 3, 0.2, now, window=32)):
        headers = {k.lower(): v for k, v in q.headers.items()}
        key = f"{q.provider}:{q.payment.external_id}"
        raw = RawWebhook(f"r{i}", q.provider, NOW_MS + i, q.body, headers, "webhook", "", key)
        out.append(_Msg(raw.kafka_key, q.body, raw.to_kafka_headers(), i))
    return out


class _Msg:
    topic, partition = "webhooks.raw", 0

    def __init__(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], offset: int):
        self.key, self.value, self.headers, self.offset = key, value, headers, offset


def step_us(msgs: list[Any], batch: int = 64) -> float:
    """``flow.process`` per raw record, entries kept in memory as the worker's cache does."""
    times = []
    for _ in range(5):
        entries: dict[bytes, Any] = {}
        start = time.perf_counter()
        lookup = _lookup(entries)
        for i in range(0, len(msgs), batch):
            out = flow.process(msgs[i : i + batch], lookup, 3_600_000, 1 << 20, 0)
            entries.update((k, w.entry) for k, w in out.payments.items())
        times.append((time.perf_counter() - start) / len(msgs))
    return round(statistics.median(times) * 1e6, 2)


def bench() -> dict[str, Any]:
    c = codecs()
    out: dict[str, Any] = {"before_0090": BEFORE_0090}
    for n in (3, 40):
        state, effect = state_of(n)
        entry = Entry(state, {f"coinbase:e{i}": NOW_MS for i in range(n)})
        value = c["entry.encode"](entry)
        out[f"entry_{n}_events"] = {
            "bytes": len(value),
            "encode_us": per_call_us(c["entry.encode"], [entry] * 2000),
            "decode_us": per_call_us(c["entry.decode"], [value] * 2000),
        }
    state, effect = state_of(3)
    snap, trans = c["snapshot.encode"](state), c["transition.encode"](effect)
    dl = dict(stage="apply", reason="x", topic="webhooks.raw", partition=0, offset=1, key=b"k",
              value=b"{}" * 100, headers=[("id", b"r1")], failed_at_ms=NOW_MS)  # fmt: skip
    dead = c["dead_letter.encode"](dl)
    for kind, obj, raw in (("snapshot", state, snap), ("transition", effect, trans),
                           ("dead_letter", dl, dead)):  # fmt: skip
        out[kind] = {
            "bytes": len(raw),
            "encode_us": per_call_us(c[f"{kind}.encode"], [obj] * 5000),
            "decode_us": per_call_us(c[f"{kind}.decode"], [raw] * 5000),
        }
    decode_t, decode_s = c["transition.decode"], c["snapshot.decode"]
    out["sink_row_us"] = {
        "clickhouse_event_row": per_call_us(lambda v: event_row(decode_t(v)), [trans] * 5000),
        "postgres_tx_row": per_call_us(_postgres_row(decode_s), [_kafka(snap)] * 5000),
    }
    raw_msg = raw_messages(1)[0]
    out["raw_webhook"] = {
        "encode_us": per_call_us(lambda m: m.to_kafka_headers(), [_raw(raw_msg)] * 5000),
        "decode_us": per_call_us(_raw, [raw_msg] * 5000),
    }
    out["flow_step_us_per_raw_record"] = step_us(raw_messages(400))
    return out


def _lookup(entries: dict[bytes, Any]) -> Callable[[bytes, Any], Any]:
    return lambda k, _: entries.get(k) or Entry()


def _raw(m: Any) -> Any:
    return RawWebhook.from_kafka(m.value, m.headers)


def _kafka(value: bytes) -> Any:
    from aiokafka import ConsumerRecord

    return ConsumerRecord("s", 0, 0, 0, 0, None, value, None, 0, 0, [])


def _postgres_row(decode: Callable[[bytes], Any]) -> Callable[[Any], Any]:
    """A snapshot record to its ``transactions`` row: before 0090 the sink took the Kafka
    record and decoded inside; now it decodes first."""
    if BEFORE_0090:
        return lambda rec: tx_rows(newest_snapshots([rec]))
    return lambda rec: tx_rows(newest_snapshots([decode(rec.value)]))


if __name__ == "__main__":
    print(orjson.dumps(bench(), option=orjson.OPT_INDENT_2).decode())
