"""The Faust application: two agents and two tables, built by ``create_app(settings)``.

    webhooks.raw --normalize--> payments.events (keyed by transaction)
    payments.events --dedupe + apply--> payments.state, payments.transitions
    any record that cannot be processed --> webhooks.dlq, with reason and stage

Delivery: at least once (Faust flushes the producer before it commits offsets); every
step is idempotent, so redeliveries and replays change nothing. See docs/decisions/.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import faust
import faust.streams as faust_streams
import orjson
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import EventT, TableT

from pipeline.dlq import dead_letter
from pipeline.envelope import KIND_CHECKOUT, RawWebhook
from pipeline.retry import Backoff, retry
from pipeline.settings import Settings
from streams import codec, metrics
from streams import step as step_
from streams.checkouts import parse_checkout
from streams.providers import normalize
from streams.step import Entry

log = logging.getLogger("streams")


def create_app(settings: Settings) -> faust.App:
    s, t = settings.streams, settings.topics
    app = faust.App(
        s.app_id,
        broker=f"kafka://{settings.kafka.bootstrap}",
        store=s.store,
        datadir=s.data_dir,
        topic_partitions=t.partitions,
        topic_replication_factor=t.replication,
        topic_allow_declare=True,
        web_enabled=False,
        producer_acks=-1,
        producer_linger=s.producer_linger_ms / 1000,
        producer_max_batch_size=512 * 1024,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=20.0,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=300.0,
        logging_config=None,
    )

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
            partitions=t.partitions,
        )

    raw_topic, events_topic = topic(t.raw), topic(t.events)
    state_topic, transitions_topic, dlq_topic = topic(t.state), topic(t.transitions), topic(t.dlq)

    def table(name: str) -> TableT[bytes, bytes]:
        # bytes key and value: the changelog stores them raw, orjson does the encoding
        return app.Table(
            name, default=None, key_type=bytes, value_type=bytes, partitions=t.partitions
        )

    tx_table = table("transactions")  # per payment: its state and its recently seen event ids
    policy = Backoff(s.retry_base_s, s.retry_max_s, s.retry_attempts)
    ttl_ms = s.dedup_ttl_s * 1000

    async def send(tp: faust.TopicT, key: bytes, value: bytes) -> None:
        """Hand one record to the producer (Faust flushes it before committing offsets).

        Straight to ``app.producer``, not ``Topic.send``: the same producer without the
        channel and future-message layers, which cost 15 % of the worker (py-spy)."""
        name = tp.get_topic_name()

        async def once() -> None:
            await app.producer.send(name, key, value, None, None, None)

        await retry(once, policy, (KafkaError, ProducerSendError, OSError))

    async def to_dlq(event: EventT[bytes], stage: str, exc: BaseException) -> None:
        m = event.message
        reason = f"{type(exc).__name__}: {exc}"
        log.warning(
            "dead letter stage=%s reason=%s offset=%s:%s:%s",
            stage,
            reason[:200],
            m.topic,
            m.partition,
            m.offset,
        )
        record = dead_letter(
            stage=stage,
            reason=reason,
            topic=m.topic,
            partition=m.partition,
            offset=m.offset,
            key=m.key,
            value=m.value,
            headers=_header_list(m.headers),
            failed_at_ms=int(time.time() * 1000),
        )
        await send(dlq_topic, m.key or b"", orjson.dumps(record))
        metrics.DEAD_LETTERS.labels(stage).inc()

    async def guarded(
        event: EventT[bytes], stage: str, step: Callable[[], Awaitable[None]]
    ) -> None:
        """Bad input is data: any failure of one record sends it to the DLQ, the stream goes on.

        Transient broker errors were already retried with backoff (``send``); if they persist,
        the record goes to the DLQ too, and if even that write fails the worker stops, to
        resume from its last commit: a poison record never blocks its partition, and nothing
        is skipped silently."""
        try:
            await step()
        except Exception as exc:
            await to_dlq(event, stage, exc)

    @app.agent(raw_topic)
    async def normalize_agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():

            async def step(event: EventT[bytes] = event) -> None:
                raw = RawWebhook.from_kafka(
                    event.message.value, _header_list(event.message.headers)
                )
                if raw.kind == KIND_CHECKOUT:
                    c = parse_checkout(raw)
                    await send(events_topic, c.tx_key.encode(), codec.encode_checkout(c))
                    metrics.NORMALIZED.labels(raw.provider, "checkout").inc()
                    return
                for e in normalize(raw):
                    await send(events_topic, e.tx_key.encode(), codec.encode_event(e))
                    metrics.NORMALIZED.labels(raw.provider, "event").inc()

            await guarded(event, "normalize", step)

    @app.agent(events_topic)
    async def apply_agent(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(
            s.batch_max, within=s.batch_wait_ms / 1000
        )
        async for batch in batches:
            await apply_batch(batch)

    async def apply_batch(batch: Sequence[EventT[bytes]]) -> None:
        """Each event in order against its payment's entry; then one table write and one state
        snapshot per payment touched, and every transition record. Faust acks the batch only
        after this returns, and flushes the producer before it commits the offsets."""
        entries: dict[bytes, Entry] = {}  # payments processed, in first-touched order
        last: dict[bytes, EventT[bytes]] = {}  # the newest event of each payment in the batch
        changed: set[bytes] = set()
        transitions: list[tuple[bytes, bytes]] = []
        for event in batch:
            key = event.message.key or b""
            try:
                record = codec.decode(event.message.value or b"")
                entry = entries[key] if key in entries else Entry.decode(tx_table.get(key))
                outcome = step_.process(entry, record, ttl_ms)
            except Exception as exc:
                await to_dlq(event, "apply", exc)
                continue
            entries[key], last[key] = outcome.entry, event
            if outcome.changed:
                changed.add(key)
            processed_ms = int(time.time() * 1000)  # a metric only, never part of state
            delivery = delivery_fields(record, outcome.duplicate, processed_ms)
            for eff in outcome.effects:
                out = {**eff.to_dict(), **delivery}
                if not outcome.duplicate:
                    out["outcome"] = "applied" if eff.applied else "refused"
                transitions.append((key, orjson.dumps(out)))
                metrics.EVENTS.labels(out["outcome"]).inc()
            if outcome.effects and getattr(record, "received_at", None) is not None:
                seconds = (processed_ms - delivery["delivery_received_at_ms"]) / 1000
                metrics.LATENCY.labels(record.provider).observe(seconds)
        for key, entry in entries.items():
            assert entry.state is not None  # any record processed leaves a state
            snapshot = orjson.dumps(entry.state.to_dict())
            if key in changed:
                with as_current(last[key]):  # the table's store and changelog partition
                    tx_table[key] = entry.encode(snapshot)
            await send(state_topic, key, snapshot)
        for key, value in transitions:
            await send(transitions_topic, key, value)

    return app


@contextmanager
def as_current(event: EventT[bytes]) -> Iterator[None]:
    """Make ``event`` Faust's current event, as during its own iteration: a table write takes
    its store and its changelog partition from the current event. A batch (``take_events``)
    has none of its own; Faust sets the same context variable when it delivers one event."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def delivery_fields(record: Any, duplicate: bool, processed_ms: int) -> dict[str, Any]:
    """Which delivery this transition record answers: one row of the ClickHouse ingest log."""
    received = getattr(record, "received_at", None)
    return {
        "delivery_id": getattr(record, "raw_id", ""),
        "delivery_received_at_ms": int(received.timestamp() * 1000) if received else processed_ms,
        "processed_at_ms": processed_ms,
        "outcome": "duplicate" if duplicate else "applied",
    }


def _header_list(headers: Any) -> list[tuple[str, bytes]]:
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)
