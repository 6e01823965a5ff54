"""What streams.faust_glue relies on inside faust-streaming: these fail when Faust changes it."""

from __future__ import annotations

import asyncio
import inspect
import textwrap
from typing import Any

import faust
import faust.streams as faust_streams
import faust.transport.drivers.aiokafka as aiokafka_driver
import pytest

from streams.faust_glue import (
    FETCH_MAX_WAIT_MS,
    FETCH_MIN_BYTES,
    FETCH_WAIT_S,
    AckedTable,
    WorkerConsumer,
    as_current,
)

#: the body of faust.Table.on_key_set that AckedTable.on_key_set repeats, keeping the future
FAUST_ON_KEY_SET = """\
def on_key_set(self, key: KT, value: VT) -> None:
    \"\"\"Call when the value for a key in this table is set.\"\"\"
    fut = self.send_changelog(self.partition_for_key(key), key, value)
    # partition may be None, in which case the finalized partition
    # is in fut.partition
    partition = fut.message.partition
    assert partition is not None
    self._maybe_set_key_ttl(key, partition)
    self._sensor_on_set(self, key, value)
"""


def test_faust_table_on_key_set_is_still_what_acked_table_repeats() -> None:
    source = textwrap.dedent(inspect.getsource(faust.Table.on_key_set))
    assert source == FAUST_ON_KEY_SET


def test_acked_table_keeps_every_changelog_future_until_taken() -> None:
    sent: list[object] = []

    class Fut:
        class message:  # the shape of faust's FutureMessage.message
            partition = 3

    table: Any = AckedTable.__new__(AckedTable)
    table.send_changelog = lambda p, k, v: sent.append((p, k, v)) or Fut()
    table.partition_for_key = lambda key: 3
    table._maybe_set_key_ttl = lambda key, partition: None
    table._sensor_on_set = lambda t, key, value: None
    AckedTable.on_key_set(table, b"k1", b"v1")
    AckedTable.on_key_set(table, b"k2", b"v2")
    assert sent == [(3, b"k1", b"v1"), (3, b"k2", b"v2")]
    assert len(table.take_unacked()) == 2
    assert table.take_unacked() == []


def test_as_current_makes_the_message_fausts_current_event_and_restores_it() -> None:
    message = object()
    assert faust_streams.current_event() is None
    with as_current(message):
        current = faust_streams.current_event()
        assert current is not None and current.message is message
    assert faust_streams.current_event() is None


def _consumer() -> Any:
    """An WorkerConsumer with only what ``Service.wait_first`` reads: no app, no broker."""
    c: Any = WorkerConsumer.__new__(WorkerConsumer)
    c._stopped, c._crashed = asyncio.Event(), asyncio.Event()
    c.loop = asyncio.get_running_loop()
    return c


async def test_a_delivery_that_never_suspends_completes_without_a_task() -> None:
    consumer, tasks = _consumer(), len(asyncio.all_tasks())
    seen: list[int] = []

    async def deliver() -> str:
        seen.append(len(asyncio.all_tasks()))
        return "delivered"

    suspend = asyncio.Event()
    result = await consumer.wait_first(deliver(), suspend.wait())
    assert result.results == ["delivered"] and not result.stopped
    assert seen == [tasks]  # ran inline, in the caller's task


async def test_a_delivery_that_suspends_finishes_as_fausts_wait_first_would() -> None:
    consumer = _consumer()
    room: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def deliver() -> str:
        got = await room  # a full buffer: waits for room
        await asyncio.sleep(0)
        return f"delivered after {got}"

    suspend = asyncio.Event()
    waiting = asyncio.ensure_future(consumer.wait_first(deliver(), suspend.wait()))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    room.set_result("room")
    result = await waiting
    assert result.results == ["delivered after room"]


async def test_a_suspended_delivery_is_cancelled_when_the_flow_is_suspended() -> None:
    consumer = _consumer()
    cancelled: list[bool] = []

    async def deliver() -> None:
        try:
            await asyncio.get_running_loop().create_future()  # never gets room
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    suspend = asyncio.Event()
    waiting = asyncio.ensure_future(consumer.wait_first(deliver(), suspend.wait()))
    await asyncio.sleep(0.01)
    suspend.set()  # a rebalance starts
    result = await asyncio.wait_for(waiting, 1)
    assert len(result.results) == 1 and result.results[0] is True  # the suspend event won
    await asyncio.sleep(0)
    assert cancelled == [True]  # the delivery was abandoned, not left running


def test_fausts_fetch_loop_still_delivers_through_wait_first_with_the_suspend_event() -> None:
    from faust.transport.consumer import Consumer

    source = " ".join(inspect.getsource(Consumer._drain_messages).split())
    assert "await self.wait_first( callback(message), self.suspend_flow.wait() )" in source
    assert source.count("wait_first(") == 1


class _TP:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition


RAW0, RAW1, LOG0 = _TP("raw", 0), _TP("raw", 1), _TP("changelog", 0)


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A WorkerConsumer with the raw topic gapless and Faust's own gap bookkeeping and fetch
    replaced by recorders: no app, no broker."""
    c: Any = WorkerConsumer.__new__(WorkerConsumer)
    c.transport = type("T", (), {"gapless_topics": frozenset({"raw"})})()
    c.assignment = lambda: {RAW0, RAW1, LOG0}
    c.sought, c.faust_gaps, c.fetch_timeouts = [], [], []

    async def seek(tp: Any, offset: int) -> None:
        c._seek_epoch += 1
        c.sought.append((tp.partition, offset))

    async def faust_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        c.faust_gaps.append((tp.topic, offset_from, offset_to))

    async def faust_fetch(self: Any, timeout: float) -> Any:
        c.fetch_timeouts.append(timeout)
        return {}, set()

    c.seek = seek
    monkeypatch.setattr(aiokafka_driver.Consumer, "_add_gap", faust_gap)
    monkeypatch.setattr(aiokafka_driver.Consumer, "_wait_next_records", faust_fetch)
    return c


async def test_a_jump_on_a_gapless_topic_is_fetched_again_and_not_counted_as_a_gap(
    consumer: Any,
) -> None:
    # delivered up to 268, and the next record is 279: Faust would count 269-279 as done
    await consumer._add_gap(RAW0, 269, 279)
    assert consumer.faust_gaps == [] and consumer.sought == []
    await consumer._wait_next_records(1.0)
    assert consumer.sought == [(0, 268)]  # from the last offset read (it may come twice)
    await consumer._wait_next_records(1.0)
    assert consumer.sought == [(0, 268)]  # once


async def test_the_same_jump_seen_again_is_a_real_gap_left_to_faust(consumer: Any) -> None:
    await consumer._add_gap(RAW0, 269, 279)
    await consumer._wait_next_records(1.0)
    await consumer._add_gap(RAW0, 269, 279)  # records deleted by retention: still a jump
    await consumer._wait_next_records(1.0)
    assert consumer.sought == [(0, 268)] and consumer.faust_gaps == [("raw", 269, 279)]


async def test_gaps_of_other_topics_are_faust_s(consumer: Any) -> None:
    await consumer._add_gap(LOG0, 5, 9)  # a compacted changelog has gaps by nature
    await consumer._wait_next_records(1.0)
    assert consumer.faust_gaps == [("changelog", 5, 9)] and consumer.sought == []


async def test_a_seek_after_the_jump_replaces_the_refetch(consumer: Any) -> None:
    await consumer._add_gap(RAW0, 269, 279)
    await consumer._add_gap(RAW1, 41, 50)
    await consumer.seek(RAW1, 30)  # a rebalance sought every partition to its commit
    await consumer._wait_next_records(1.0)
    assert consumer.sought == [(1, 30)]


async def test_no_refetch_for_a_partition_no_longer_held(consumer: Any) -> None:
    await consumer._add_gap(RAW1, 41, 50)
    consumer.assignment = lambda: {RAW0}
    await consumer._wait_next_records(1.0)
    assert consumer.sought == []


def test_fausts_fetch_still_waits_as_long_as_it_is_told() -> None:
    from faust.transport.consumer import Consumer

    loop = " ".join(inspect.getsource(Consumer._drain_messages).split())
    assert "getmany(timeout=1.0)" in loop  # a second per fetch, unless shortened below
    fetch = " ".join(inspect.getsource(Consumer._wait_next_records).split())
    assert "await self._getmany( active_partitions=active_partitions, timeout=timeout, )" in fetch


async def test_a_fetch_waits_for_records_at_most_fetch_wait_s(consumer: Any) -> None:
    await consumer._wait_next_records(1.0)  # what Faust's fetch loop asks for
    await consumer._wait_next_records(0.01)  # shorter already: kept
    assert consumer.fetch_timeouts == [FETCH_WAIT_S, 0.01]
    assert FETCH_WAIT_S <= 0.1  # a full buffer's partition waits no longer than that


def test_the_workers_aiokafka_consumer_fetches_in_batches(settings: Any) -> None:
    """Faust builds the consumer with fetch_min_bytes 1 and a 1.5 s wait; the worker's asks the
    broker for FETCH_MIN_BYTES or FETCH_MAX_WAIT_MS, whichever comes first (decision 0110)."""
    from streams.faust_app import faust_app

    async def build() -> Any:
        app = faust_app(settings)
        thread = app.consumer._new_consumer_thread()
        return thread._create_worker_consumer(app.transport)

    consumer = asyncio.run(build())
    assert consumer._fetch_min_bytes == FETCH_MIN_BYTES > 1
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500


def test_the_lean_monitor_keeps_what_faust_reads_and_skips_the_per_message_counting(
    settings: Any,
) -> None:
    """The app's monitor is a LeanMonitor: each hook it overrides is one Faust's Monitor has
    (a renamed hook would silently count again), and it still records when a partition's
    stream last took an event, which Faust's slow-processing warnings read."""
    from faust.sensors.monitor import Monitor

    from streams.faust_app import faust_app
    from streams.faust_glue import LeanMonitor

    app = faust_app(settings)
    assert isinstance(app.monitor, LeanMonitor)
    overridden = [n for n, f in vars(LeanMonitor).items() if n.startswith("on_") and callable(f)]
    assert len(overridden) == 8
    assert all(callable(getattr(Monitor, n, None)) for n in overridden)
    monitor, tp = LeanMonitor(), faust.types.TP("webhooks.raw", 1)
    monitor.on_message_in(tp, 7, object())
    monitor.on_stream_event_in(tp, 7, object(), object())
    monitor.on_message_out(tp, 7, object())
    assert monitor.stream_inbound_time[tp] > 0
    assert monitor.messages_received_total == 0  # not counted: Faust's web views are off
