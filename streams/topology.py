"""The stream stage's topology: one agent and one table.

    webhooks.raw (keyed by payment) --read, normalize, dedupe, apply (streams.flow)-->
        table ``transactions`` (changelogged), payments.state, payments.transitions
    any record that cannot be processed --> webhooks.dlq, with reason and stage
    a record keyed by anything but its payment --> webhooks.raw again, keyed by its payment

The agent hands each batch to one pure step, ``streams.flow.process``, and writes what it
returns. Delivery: at least once. Each batch awaits the broker's ack of every record it
produced (outputs, dead letters, re-routed records, table changelog) before Faust may ack and
commit it; an agent that fails ends the process (``fail_loudly``). Every step is idempotent,
so redeliveries and replays change nothing. See docs/decisions/ (0002, 0005-0009). How the
Faust process is configured: ``streams.faust_app``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import EventT

from domain.records import Entry, decode_entry
from pipeline.retry import Backoff, retry
from pipeline.settings import Settings
from streams import flow
from streams.cache import EntryCache
from streams.faust_app import fail_loudly, faust_app
from streams.faust_glue import BatchTable, RawSchema

#: batches whose records may await the broker's acks while the next batch is processed
IN_FLIGHT = 2


def create_app(settings: Settings) -> faust.App:
    return Worker(settings).app


class Worker:
    """The app, its raw topic and ``transactions`` table, and the agent ``process``."""

    def __init__(self, settings: Settings) -> None:
        self.s, self.t = settings.streams, settings.topics
        self.app = app = faust_app(settings)
        self.raw = self._topic(self.t.raw)
        # per payment: its state and its recently seen event ids; bytes in, bytes out
        self.table = cast(
            BatchTable,
            app.Table(
                "transactions",
                default=None,
                key_type=bytes,
                value_type=bytes,
                partitions=self.t.partitions,
            ),
        )
        self.cache = EntryCache(self.s.entry_cache_size)
        self.policy = Backoff(self.s.retry_base_s, self.s.retry_max_s, self.s.retry_attempts)
        app.on_partitions_revoked.connect(self.forget)
        app.agent(self.raw, name="streams.process")(self.process)

    async def process(self, stream: faust.StreamT[bytes]) -> None:
        """Batch after batch; while earlier batches' records travel to the broker, the next is
        processed. A batch is acked (and so may be committed) only once the broker has
        acknowledged every record it produced and the batch before it is acked (``settle``);
        at most ``IN_FLIGHT`` batches wait for their acks (decisions 0010, 0100)."""
        batches = cast(faust.Stream[bytes], stream).take_events(
            self.s.batch_max, within=self.s.batch_wait_ms / 1000
        )
        in_flight: deque[asyncio.Task[None]] = deque()
        async with fail_loudly("process"):
            async for batch in batches:
                for event in batch:  # Faust acks the batch when the next one is taken: hold it
                    event.message.incref()
                sent, changes = await self.run_batch(batch)
                if len(in_flight) == IN_FLIGHT:
                    await in_flight.popleft()
                previous = in_flight[-1] if in_flight else None
                settling = self.settle(batch, sent, changes, previous)
                in_flight.append(asyncio.create_task(settling))

    async def settle(
        self,
        events: Sequence[EventT[bytes]],
        sent: list[Any],
        changes: list[Any],
        previous: asyncio.Task[None] | None,
    ) -> None:
        """Ack the batch's records once every record it produced is acknowledged, and after
        the batch before it: offsets are acked in the order they were read. The table's
        changelog offsets are persisted first (``BatchTable.persisted``)."""
        async with fail_loudly("process"):
            await asyncio.gather(*sent)
            acked = await asyncio.gather(*changes)
            if previous is not None:
                await previous
            self.table.persisted(acked)
            for event in events:
                event.ack()

    async def run_batch(self, events: Sequence[EventT[bytes]]) -> tuple[list[Any], list[Any]]:
        """One batch through ``flow.process``, handed to the producer; returns the deliveries
        of the records it produced (outputs, dead letters, re-routed), and of its table
        changelog records."""
        now_ms = int(time.time() * 1000)  # receipt-to-processing metrics only, never state
        messages = (e.message for e in events)
        s, t = self.s, self.t
        out = flow.process(messages, self.lookup, s.dedup_ttl_s * 1000, s.max_state_bytes, now_ms)
        send, table, changelog = self.send, self.table, self.table.changelog_topic_name
        sent = [await send(t.raw, k, m.value, flow.headers_of(m)) for k, m in out.reroute]
        sent += [await send(t.dlq, k, v) for k, v in out.dead]
        changes = []
        for key, w in out.payments.items():
            if w.value is not None:  # its store and changelog partition: its record's
                table.store(key, w.value, w.last)
                changes.append(await send(changelog, key, w.value, partition=w.last.partition))
            sent.append(await send(t.state, key, w.snapshot))
            self.cache.put(key, w.entry)
        sent += [await send(t.transitions, k, v) for k, v in out.transitions]
        return sent, changes

    def lookup(self, key: bytes, m: flow.Message) -> Entry:
        entry = self.cache.get(key)
        if entry is None:  # read the record's own store
            entry = decode_entry(self.table.load(key, m))
        return entry

    async def send(
        self,
        name: str,
        key: bytes,
        value: bytes | None,
        headers: Any = None,
        partition: int | None = None,
    ) -> Awaitable[Any]:
        """Hand one record to the producer; returns its delivery (the broker's ack).

        Straight to ``app.producer``, not ``Topic.send``: the same producer without the
        channel and future-message layers, which cost 15 % of the worker (py-spy)."""
        producer = self.app.producer

        async def once() -> Awaitable[Any]:
            sent: Awaitable[Any] = await producer.send(name, key, value, partition, None, headers)
            return sent

        return await retry(once, self.policy, (KafkaError, ProducerSendError, OSError))

    async def forget(self, *_: Any, **__: Any) -> None:
        self.cache.clear()  # another worker may change what this one cached

    def _topic(self, name: str) -> faust.TopicT:
        return self.app.topic(name, schema=RawSchema(), partitions=self.t.partitions)
