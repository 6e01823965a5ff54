"""The one sink contract, and the loop that drives any sink from Kafka.

Delivery guarantee: at least once into the database, exactly once in effect. A batch is
written as one commit (``Sink.write``); Kafka offsets move only after that write succeeded.
A crash between the write and the offset commit redelivers the batch, and every sink's write
is idempotent (version-guarded upserts, event-id keyed rows), so nothing is doubled.
While the database is down the loop pauses its partitions, retries with backoff and jitter,
and logs one line per state change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from tenacity import RetryCallState

from pipeline.retry import Backoff
from sinks import metrics
from sinks.errors import RecordRefused, SinkUnavailable

log = logging.getLogger("sinks")


DeadLetter = Callable[[ConsumerRecord, str], Awaitable[None]]
R = TypeVar("R")


class Sink(Protocol[R]):
    """Takes the records of its topics decoded (``decode``, once per Kafka record) and writes
    them in batches."""

    name: str

    async def start(self) -> None: ...

    def decode(self, record: ConsumerRecord) -> R:
        """The record's typed value; ``ValueError`` when it is not one (it is dead-lettered)."""
        ...

    async def write(self, records: Sequence[R]) -> None:
        """Write one batch durably as one commit, or raise SinkUnavailable."""
        ...

    async def close(self) -> None: ...


class ListSink:
    """In-memory double: keeps every batch it was given (its records decode to themselves);
    can be told to fail, to refuse some values, and that some values are unreadable."""

    name = "list"

    def __init__(self) -> None:
        self.batches: list[list[ConsumerRecord]] = []
        self.fail_next = 0
        self.refuse: set[bytes] = set()  # record values the "database" refuses
        self.unreadable: set[bytes] = set()  # record values ``decode`` cannot read

    async def start(self) -> None:
        return None

    def decode(self, record: ConsumerRecord) -> ConsumerRecord:
        if record.value in self.unreadable:
            raise ValueError("told it is unreadable")
        return record

    async def write(self, records: Sequence[ConsumerRecord]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise SinkUnavailable("told to fail")
        if any(r.value in self.refuse for r in records):
            raise RecordRefused("told to refuse")
        self.batches.append(list(records))

    async def close(self) -> None:
        return None


async def run_sink(
    sink: Sink[R],
    consumer: AIOKafkaConsumer,
    batch_size: int,
    flush_interval_ms: int,
    backoff: Backoff,
    stop: asyncio.Event,
    dead_letter: DeadLetter | None = None,
    linger_ms: int = 0,
) -> None:
    """Consume, write in batches, commit after each successful write, until ``stop`` is set.

    With ``linger_ms``, a batch waits that long after its first record for more (up to
    ``batch_size``): fewer, larger writes, for a store where each write costs more than the
    records in it (ClickHouse: a dedup lookup, inserts, materialized views, a part to merge).

    A record ``sink.decode`` cannot read goes to ``dead_letter`` with the reason. A batch the
    database refuses for its data (``RecordRefused``) is written record by record; each record
    refused on its own goes to ``dead_letter`` with the reason, and the partition moves on.
    Without ``dead_letter`` such a record or batch stops the loop."""
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=flush_interval_ms, max_records=batch_size)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            if linger_ms:
                records += await _more(consumer, batch_size - len(records), linger_ms, stop)
            decoded = await _decode(sink, records, dead_letter)
            if decoded:
                await _write_batch(sink, consumer, decoded, backoff, stop, dead_letter)
            try:
                await consumer.commit(_next_offsets(records))
            except CommitFailedError as exc:  # the group rebalanced meanwhile
                # the written records come again to whichever member holds their partitions
                # now, and writing them again changes nothing (decision 0002)
                log.warning("sink %s could not commit after a rebalance: %s", sink.name, exc)
    finally:
        await sink.close()


async def _write_batch(
    sink: Sink[R],
    consumer: AIOKafkaConsumer,
    decoded: list[tuple[ConsumerRecord, R]],
    backoff: Backoff,
    stop: asyncio.Event,
    dead_letter: DeadLetter | None,
) -> None:
    try:
        await _write_until_done(sink, consumer, [v for _, v in decoded], backoff, stop)
    except RecordRefused as exc:
        if dead_letter is None:
            raise
        log.warning("sink %s refused a batch, isolating the record: %s", sink.name, exc)
        for r, v in decoded:
            try:
                await _write_until_done(sink, consumer, [v], backoff, stop)
            except RecordRefused as one:
                await dead_letter(r, str(one))


async def _decode(
    sink: Sink[R], records: list[ConsumerRecord], dead_letter: DeadLetter | None
) -> list[tuple[ConsumerRecord, R]]:
    """Each record with its decoded value; one that cannot be read is dead-lettered."""
    out = []
    for r in records:
        try:
            out.append((r, sink.decode(r)))
        except (ValueError, RecursionError) as exc:  # msgspec: too deep is a RecursionError
            reason = f"{sink.name}: undecodable record: {type(exc).__name__}: {exc}"
            if dead_letter is None:
                raise RecordRefused(reason) from exc
            log.warning("sink %s cannot read %s:%s:%s", sink.name, r.topic, r.partition, r.offset)
            await dead_letter(r, reason)
    return out


async def _more(
    consumer: AIOKafkaConsumer, room: int, linger_ms: int, stop: asyncio.Event
) -> list[ConsumerRecord]:
    """Records that arrive within ``linger_ms``, up to ``room`` of them."""
    more: list[ConsumerRecord] = []
    deadline = time.monotonic() + linger_ms / 1000
    while len(more) < room and not stop.is_set():
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0:
            break
        got = await consumer.getmany(timeout_ms=left_ms, max_records=room - len(more))
        more += [r for rs in got.values() for r in rs]
    return more


async def _write_until_done(
    sink: Sink[R],
    consumer: AIOKafkaConsumer,
    records: list[R],
    backoff: Backoff,
    stop: asyncio.Event,
) -> None:
    async def failed(state: RetryCallState) -> None:
        metrics.RETRIES.labels(sink.name).inc()
        if state.attempt_number == 1:
            log.warning("sink %s unavailable, pausing consumption: %s", sink.name, _error(state))
            consumer.pause(*consumer.assignment())
            metrics.UP.labels(sink.name).set(0)
        await consumer.getmany(timeout_ms=0)  # keeps the group membership alive while paused

    async for attempt in backoff.retrying((SinkUnavailable,), until=stop, after=failed):
        with attempt:
            started = time.monotonic()
            await sink.write(records)
    if (retries := attempt.retry_state.attempt_number - 1) > 0:
        log.warning("sink %s back after %d retries, resuming", sink.name, retries)
        consumer.resume(*consumer.assignment())
        metrics.UP.labels(sink.name).set(1)
    elapsed = time.monotonic() - started
    metrics.ROWS.labels(sink.name).inc(len(records))
    metrics.FLUSH_SECONDS.labels(sink.name).observe(elapsed)
    metrics.BATCH_SIZE.labels(sink.name).observe(len(records))
    log.debug("sink %s wrote %d records in %.1f ms", sink.name, len(records), elapsed * 1000)


async def start_sink(sink: Sink[R], backoff: Backoff, stop: asyncio.Event) -> None:
    """Start a sink (connect, migrate), retrying while its database is unreachable; returns
    unstarted when ``stop`` is set meanwhile."""
    metrics.register(sink.name)

    def failed(state: RetryCallState) -> None:
        metrics.RETRIES.labels(sink.name).inc()
        metrics.UP.labels(sink.name).set(0)
        if state.attempt_number == 1:
            log.warning("sink %s cannot start yet, retrying: %s", sink.name, _error(state))

    try:
        async for attempt in backoff.retrying((SinkUnavailable,), until=stop, after=failed):
            with attempt:
                await sink.start()
    except SinkUnavailable:
        if not stop.is_set():
            raise
        return
    metrics.UP.labels(sink.name).set(1)


def _error(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None


def _next_offsets(records: Sequence[ConsumerRecord]) -> dict[TopicPartition, int]:
    out: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        out[tp] = max(out.get(tp, 0), r.offset + 1)
    return out
