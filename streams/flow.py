"""One batch of ``webhooks.raw`` in one pass: read, normalize, deduplicate, apply. Pure.

The raw topic is keyed by payment at ingest (decision 0007), so every record of a payment is
in one partition, in front of the one worker that holds that payment's table entry. For each
record, in order: its payment's records (a checkout, or a provider's events), then
``step.process`` against the payment's entry. What comes out is plain data for the Faust
adapter (``streams.topology``) to write: one table value and one state snapshot per payment
touched, the transitions, the dead letters, and the records to re-route (a record keyed by
anything but its payment, such as one written before 0007).

A record that cannot be read or applied becomes a dead letter with its reason; a payment
whose entry would outgrow ``max_state_bytes`` keeps its entry, and its records of the batch
become dead letters (decision 0006). Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from msgspec.structs import replace

from domain import step
from domain.checkouts import parse_checkout
from domain.dlq import dead_letter
from domain.errors import NormalizeError, StateLimit
from domain.providers import normalize
from domain.records import KIND_CHECKOUT, Checkout, Entry, PaymentEvent, RawWebhook, encode
from streams import metrics

Record = PaymentEvent | Checkout


class Message(Protocol):
    """What the flow reads of a Kafka record (Faust's ``Message`` has it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


@dataclass
class Written:
    """A payment touched by the batch: its new table value (None: unchanged) and snapshot."""

    entry: Entry
    value: bytes | None
    snapshot: bytes
    last: Message  # its newest record: the table's partition is this record's


@dataclass
class Batch:
    """Everything one batch produces, in the order it must be written."""

    payments: dict[bytes, Written] = field(default_factory=dict)
    transitions: list[tuple[bytes, bytes]] = field(default_factory=list)
    dead: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, dead letter)
    reroute: list[tuple[bytes, Message]] = field(default_factory=list)  # (right key, record)


def headers_of(m: Message) -> list[tuple[str, bytes]]:
    h = m.headers
    if not h:
        return []
    return list(h.items()) if isinstance(h, Mapping) else list(h)


def records_of(m: Message) -> tuple[bytes, list[Record]]:
    """The payment key and the records of one raw record (a checkout, or a webhook's events)."""
    raw = RawWebhook.from_kafka(m.value, headers_of(m))
    records: list[Record] = (
        [parse_checkout(raw)] if raw.kind == KIND_CHECKOUT else [*normalize(raw)]
    )
    keys = {r.tx_key for r in records}
    if len(keys) != 1:
        raise NormalizeError(f"the webhook is about {len(keys)} payments, not one")
    kind = "checkout" if raw.kind == KIND_CHECKOUT else "event"
    metrics.normalized(raw.provider, kind).inc(len(records))
    return keys.pop().encode(), records


def process(
    messages: Iterable[Message],
    lookup: Callable[[bytes, Message], Entry],
    ttl_ms: int,
    max_state_bytes: int,
    now_ms: int,
    rerouting: bool = True,
) -> Batch:
    """The batch's outputs; ``lookup(key, message)`` reads a payment's entry as stored.
    ``rerouting=False``: every record is taken as keyed by its payment (a rebuild)."""
    out = Batch()
    entries: dict[bytes, Entry] = {}
    mine: dict[bytes, list[Message]] = {}
    changed: set[bytes] = set()
    transitions: list[tuple[bytes, bytes]] = []
    for m in messages:
        try:
            key, records = records_of(m)
        except Exception as exc:
            out.dead.append(_dead(m, "normalize", exc, now_ms))
            continue
        if rerouting and m.key != key:
            out.reroute.append((key, m))
            continue
        entry = entries[key] if key in entries else lookup(key, m)
        try:  # all of the record or none of it
            entry, changes, effects = _apply(entry, records, ttl_ms, now_ms)
        except Exception as exc:
            out.dead.append(_dead(m, "apply", exc, now_ms))
            continue
        entries[key] = entry
        mine.setdefault(key, []).append(m)
        if changes:
            changed.add(key)
        transitions += ((key, t) for t in effects)
    refused = set()
    for key, entry in entries.items():
        assert entry.state is not None  # any record processed leaves a state
        snapshot = encode(entry.state.snapshot())
        value = encode(entry) if key in changed else None
        if value is not None and len(value) > max_state_bytes:  # unchanged: stored, so within
            refused.add(key)
            why = StateLimit(f"payment state would grow to {len(value)} bytes")
            out.dead += (_dead(m, "apply", why, now_ms) for m in mine[key])
            continue
        out.payments[key] = Written(entry, value, snapshot, mine[key][-1])
    out.transitions = [(k, t) for k, t in transitions if k not in refused]
    return out


def _apply(
    entry: Entry, records: Sequence[Record], ttl_ms: int, now_ms: int
) -> tuple[Entry, bool, list[bytes]]:
    changed, effects = False, []
    for record in records:
        outcome = step.process(entry, record, ttl_ms)
        entry, changed = outcome.entry, changed or outcome.changed
        delivery = delivery_fields(record, now_ms)
        for eff in outcome.effects:
            verdict = "duplicate" if outcome.duplicate else "applied" if eff.applied else "refused"
            t = replace(eff, **delivery, outcome=verdict)
            effects.append(encode(t))
            metrics.EVENTS_BY[verdict].inc()
            if isinstance(record, PaymentEvent) and record.received_at is not None:
                seconds = (now_ms - t.delivery_received_at_ms) / 1000
                metrics.latency(record.provider).observe(seconds)
    return entry, changed, effects


def delivery_fields(record: Record, processed_ms: int) -> dict[str, Any]:
    """Which delivery a transition record answers: one row of the ClickHouse ingest log."""
    received = getattr(record, "received_at", None)
    return {
        "delivery_id": getattr(record, "raw_id", ""),
        "delivery_received_at_ms": int(received.timestamp() * 1000) if received else processed_ms,
        "processed_at_ms": processed_ms,
    }


def _dead(m: Message, stage: str, exc: BaseException, now_ms: int) -> tuple[bytes, bytes]:
    metrics.DEAD_LETTERS_BY[stage].inc()
    record = dead_letter(
        stage=stage,
        reason=f"{type(exc).__name__}: {exc}",
        topic=m.topic,
        partition=m.partition,
        offset=m.offset,
        key=m.key,
        value=m.value,
        headers=headers_of(m),
        failed_at_ms=now_ms,
    )
    return m.key or b"", encode(record)
