"""The Faust application: two agents and two tables, built by ``create_app(settings)``.

    webhooks.raw --normalize--> payments.events (keyed by transaction)
    payments.events --dedupe + apply--> payments.state, payments.transitions
    any record that cannot be processed --> webhooks.dlq, with reason and stage

Delivery: at least once. Each batch awaits the broker's ack of every record it produced (outputs,
dead letters, table changelog) before Faust may ack and commit it; an agent that fails ends
the process (``fail_loudly``). Every step is idempotent, so redeliveries and replays change
nothing. See docs/decisions/ (0002, 0005, 0006).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import faust
import orjson
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import EventT

from pipeline.dlq import dead_letter
from pipeline.envelope import KIND_CHECKOUT, RawWebhook
from pipeline.retry import Backoff, retry
from pipeline.settings import Settings
from streams import codec, metrics
from streams import step as step_
from streams.checkouts import parse_checkout
from streams.errors import StateLimit
from streams.faust_glue import AckedTable, as_current
from streams.providers import normalize
from streams.step import Entry

log = logging.getLogger("streams")

#: exit status of a worker whose agent failed (EX_SOFTWARE)
EXIT_AGENT_FAILED = 70


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
        Table=AckedTable,
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

    def table(name: str) -> AckedTable:
        # bytes key and value: the changelog stores them raw, orjson does the encoding
        return cast(
            AckedTable,
            app.Table(
                name, default=None, key_type=bytes, value_type=bytes, partitions=t.partitions
            ),
        )

    tx_table = table("transactions")  # per payment: its state and its recently seen event ids
    policy = Backoff(s.retry_base_s, s.retry_max_s, s.retry_attempts)
    ttl_ms = s.dedup_ttl_s * 1000

    async def send(tp: faust.TopicT, key: bytes, value: bytes) -> Awaitable[Any]:
        """Hand one record to the producer; returns its delivery (the broker's ack), which the
        batch awaits before Faust may commit its offsets.

        Straight to ``app.producer``, not ``Topic.send``: the same producer without the
        channel and future-message layers, which cost 15 % of the worker (py-spy)."""
        name = tp.get_topic_name()

        async def once() -> Awaitable[Any]:
            delivery: Awaitable[Any] = await app.producer.send(name, key, value, None, None, None)
            return delivery

        return await retry(once, policy, (KafkaError, ProducerSendError, OSError))

    async def to_dlq(event: EventT[bytes], stage: str, exc: BaseException) -> Awaitable[Any]:
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
        metrics.DEAD_LETTERS.labels(stage).inc()
        return await send(dlq_topic, m.key or b"", orjson.dumps(record))

    async def normalize_one(event: EventT[bytes]) -> list[Awaitable[Any]]:
        """One raw record onto payments.events, re-keyed by payment; a record that cannot be
        read goes to the dead-letter topic with its reason (bad input is data)."""
        try:
            raw = RawWebhook.from_kafka(event.message.value, _header_list(event.message.headers))
            if raw.kind == KIND_CHECKOUT:
                c = parse_checkout(raw)
                metrics.NORMALIZED.labels(raw.provider, "checkout").inc()
                return [await send(events_topic, c.tx_key.encode(), codec.encode_checkout(c))]
            out = [(e.tx_key.encode(), codec.encode_event(e)) for e in normalize(raw)]
        except Exception as exc:
            return [await to_dlq(event, "normalize", exc)]
        metrics.NORMALIZED.labels(raw.provider, "event").inc(len(out))
        return [await send(events_topic, key, value) for key, value in out]

    @app.agent(raw_topic)
    async def normalize_agent(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(
            s.batch_max, within=s.batch_wait_ms / 1000
        )
        async with fail_loudly("normalize"):
            async for batch in batches:
                deliveries = [d for event in batch for d in await normalize_one(event)]
                await acked(deliveries)

    @app.agent(events_topic)
    async def apply_agent(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(
            s.batch_max, within=s.batch_wait_ms / 1000
        )
        async with fail_loudly("apply"):
            async for batch in batches:
                await apply_batch(batch)

    async def apply_batch(batch: Sequence[EventT[bytes]]) -> None:
        """Each event in order against its payment's entry; then one table write and one state
        snapshot per payment touched, and every transition record. Returns once the broker
        acknowledged every record the batch produced (changelog included): only then does
        Faust ack the batch and later commit its offsets.

        A record that fails, or a payment whose state would outgrow its bound, goes to the
        dead-letter topic with its reason; the rest of the batch goes on."""
        entries: dict[bytes, Entry] = {}  # payments processed, in first-touched order
        mine: dict[bytes, list[EventT[bytes]]] = {}  # each payment's events in the batch
        changed: set[bytes] = set()
        transitions: list[tuple[bytes, bytes]] = []
        deliveries: list[Awaitable[Any]] = []
        for event in batch:
            key = event.message.key or b""
            try:
                record = codec.decode(event.message.value or b"")
                entry = entries[key] if key in entries else Entry.decode(tx_table.get(key))
                outcome = step_.process(entry, record, ttl_ms)
            except Exception as exc:
                deliveries.append(await to_dlq(event, "apply", exc))
                continue
            entries[key] = outcome.entry
            mine.setdefault(key, []).append(event)
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
        refused: set[bytes] = set()
        for key, entry in entries.items():
            assert entry.state is not None  # any record processed leaves a state
            snapshot = orjson.dumps(entry.state.to_dict())
            value = entry.encode(snapshot) if key in changed else snapshot
            if len(value) > s.max_state_bytes:  # the payment keeps its state as it was
                refused.add(key)
                why = StateLimit(f"payment state would grow to {len(value)} bytes")
                deliveries += [await to_dlq(ev, "apply", why) for ev in mine[key]]
                continue
            if key in changed:
                with as_current(mine[key][-1]):  # the table's store and changelog partition
                    tx_table[key] = value
            deliveries.append(await send(state_topic, key, snapshot))
        for key, value in transitions:
            if key not in refused:
                deliveries.append(await send(transitions_topic, key, value))
        await acked([*deliveries, *tx_table.take_unacked()])

    async def acked(deliveries: list[Awaitable[Any]]) -> None:
        """Send what the producer holds now (no linger: the batch waits for it anyway) and
        wait until the broker acknowledged every record; only then may the batch be acked."""
        await app.producer.flush()
        await asyncio.gather(*deliveries)

    return app


@asynccontextmanager
async def fail_loudly(agent: str) -> AsyncIterator[None]:
    """An agent that fails (a delivery the broker refused, a bug) ends the worker process at
    once with a non-zero status, so that the launcher, compose or Kubernetes restarts it:
    nothing of the failed batch is acked or committed, and the restart resumes from the last
    commit. Faust would otherwise restart the agent alone, or leave the process idling."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        log.critical("agent %s failed, the worker exits: %r", agent, exc, exc_info=exc)
        logging.shutdown()
        os._exit(EXIT_AGENT_FAILED)


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
