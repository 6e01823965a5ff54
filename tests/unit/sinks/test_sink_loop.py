"""The sink contract: offsets move only after a successful flush; an outage pauses, retries
and resumes without losing or doubling a batch."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from pipeline.retry import Backoff
from sinks.base import ListSink, run_sink, start_sink
from sinks.errors import SinkUnavailable

TP = TopicPartition("payments.state", 0)


def record(offset: int) -> ConsumerRecord:
    return ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


class FakeConsumer:
    """In-memory double of AIOKafkaConsumer: serves queued batches, records commits."""

    def __init__(self, batches: list[list[ConsumerRecord]], stop: asyncio.Event) -> None:
        self.batches, self.stop = batches, stop
        self.commits: list[dict[TopicPartition, int]] = []
        self.paused = False
        self.pauses = 0

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, Any]:
        await asyncio.sleep(0)
        if self.paused or not self.batches:
            if not self.batches and not self.paused:
                self.stop.set()
            return {}
        batch = self.batches.pop(0)
        if max_records is not None and len(batch) > max_records:  # the rest stays queued
            self.batches.insert(0, batch[max_records:])
            batch = batch[:max_records]
        return {TP: batch}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def pause(self, *tps: TopicPartition) -> None:
        self.paused, self.pauses = True, self.pauses + 1

    def resume(self, *tps: TopicPartition) -> None:
        self.paused = False


async def test_offsets_are_committed_after_each_successful_flush() -> None:
    stop, sink = asyncio.Event(), ListSink()
    consumer = FakeConsumer([[record(0), record(1)], [record(2)]], stop)
    await run_sink(sink, consumer, 100, 10, Backoff(0.001, 0.01, 0), stop)  # type: ignore[arg-type]
    assert [[r.offset for r in b] for b in sink.batches] == [[0, 1], [2]]
    assert consumer.commits == [{TP: 2}, {TP: 3}]


async def test_a_commit_refused_after_a_rebalance_does_not_stop_the_sink() -> None:
    stop, sink = asyncio.Event(), ListSink()
    consumer = FakeConsumer([[record(0)], [record(1)]], stop)
    commit = consumer.commit
    refused: list[dict[TopicPartition, int]] = []

    async def commit_once_refused(offsets: dict[TopicPartition, int]) -> None:
        if not refused:
            refused.append(dict(offsets))
            raise CommitFailedError("the group has already rebalanced")
        await commit(offsets)

    consumer.commit = commit_once_refused  # type: ignore[method-assign]
    await run_sink(sink, consumer, 100, 10, Backoff(0.001, 0.01, 0), stop)  # type: ignore[arg-type]
    assert [[r.offset for r in b] for b in sink.batches] == [[0], [1]]
    assert refused == [{TP: 1}] and consumer.commits == [{TP: 2}]


async def test_an_outage_pauses_retries_and_resumes_with_the_same_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop, sink = asyncio.Event(), ListSink()
    sink.fail_next = 3
    consumer = FakeConsumer([[record(0)], [record(1)]], stop)
    with caplog.at_level(logging.WARNING, logger="sinks"):
        await run_sink(sink, consumer, 100, 10, Backoff(0.001, 0.01, 0), stop)  # type: ignore[arg-type]
    assert [[r.offset for r in b] for b in sink.batches] == [
        [0],
        [1],
    ]  # nothing lost, nothing doubled
    assert consumer.commits == [{TP: 1}, {TP: 2}]
    assert consumer.pauses == 1 and not consumer.paused
    lines = [r.getMessage() for r in caplog.records]
    assert sum("unavailable, pausing" in m for m in lines) == 1  # one line per state change
    assert sum("back after 3 retries" in m for m in lines) == 1


async def test_a_refused_record_is_isolated_and_dead_lettered_and_the_rest_lands() -> None:
    stop, sink = asyncio.Event(), ListSink()
    poison = ConsumerRecord(TP.topic, TP.partition, 1, 0, 0, b"k", b"poison", None, 1, 1, [])
    sink.refuse = {b"poison"}
    consumer = FakeConsumer([[record(0), poison, record(2)], [record(3)]], stop)
    dead: list[tuple[int, str]] = []

    async def dead_letter(r: ConsumerRecord, reason: str) -> None:
        dead.append((r.offset, reason))

    await run_sink(sink, consumer, 100, 10, Backoff(0.001, 0.01, 0), stop, dead_letter)  # type: ignore[arg-type]
    assert [[r.offset for r in b] for b in sink.batches] == [[0], [2], [3]]
    assert dead == [(1, "told to refuse")]
    assert consumer.commits == [{TP: 3}, {TP: 4}]  # the partition moved past the poison


async def test_an_unreadable_record_is_dead_lettered_unwritten_and_the_batch_lands() -> None:
    stop, sink = asyncio.Event(), ListSink()
    garbage = ConsumerRecord(TP.topic, TP.partition, 1, 0, 0, b"k", b"garbage", None, 1, 1, [])
    sink.unreadable = {b"garbage"}
    consumer = FakeConsumer([[record(0), garbage, record(2)], [garbage]], stop)
    dead: list[tuple[int, str]] = []

    async def dead_letter(r: ConsumerRecord, reason: str) -> None:
        dead.append((r.offset, reason))

    await run_sink(sink, consumer, 100, 10, Backoff(0.001, 0.01, 0), stop, dead_letter)  # type: ignore[arg-type]
    assert [[r.offset for r in b] for b in sink.batches] == [[0, 2]]  # one write, no garbage
    reason = "list: undecodable record: ValueError: told it is unreadable"
    assert dead == [(1, reason), (1, reason)]
    assert consumer.commits == [{TP: 3}, {TP: 2}]  # a batch of garbage only: committed too


async def test_without_a_dead_letter_writer_a_refused_batch_stops_the_loop() -> None:
    from sinks.errors import RecordRefused

    stop, sink = asyncio.Event(), ListSink()
    sink.refuse = {b"v"}
    consumer = FakeConsumer([[record(0)]], stop)
    with pytest.raises(RecordRefused):
        await run_sink(sink, consumer, 100, 10, Backoff(0.001, 0.01, 0), stop)  # type: ignore[arg-type]
    assert consumer.commits == []


async def test_with_a_linger_a_batch_gathers_what_arrives_in_time() -> None:
    stop, sink = asyncio.Event(), ListSink()
    consumer = FakeConsumer([[record(0)], [record(1)], [record(2), record(3)]], stop)
    await run_sink(sink, consumer, 3, 10, Backoff(0.001, 0.01, 0), stop, linger_ms=1000)  # type: ignore[arg-type]
    assert [[r.offset for r in b] for b in sink.batches] == [[0, 1, 2], [3]]  # at most 3
    assert consumer.commits == [{TP: 3}, {TP: 4}]


class LateSink(ListSink):
    """Its database answers only after ``failures`` starts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures, self.starts = failures, 0

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise SinkUnavailable("database not up yet")


async def test_a_sink_that_cannot_start_yet_is_started_again_until_it_can() -> None:
    sink = LateSink(failures=3)
    await start_sink(sink, Backoff(0.001, 0.01, 0), asyncio.Event())
    assert sink.starts == 4


async def test_a_stop_while_a_sink_cannot_start_returns_without_an_error() -> None:
    sink, stop = LateSink(failures=10**6), asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    await asyncio.wait_for(start_sink(sink, Backoff(0.001, 0.01, 0), stop), 5)
    assert 1 < sink.starts < 10**6
