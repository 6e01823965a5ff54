"""What streams.faust_glue relies on inside faust-streaming: these fail when Faust changes it."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import faust
import faust.streams as faust_streams
import faust.transport.drivers.aiokafka as aiokafka_driver
import pytest
from faust.types import TP, Message

from streams.faust_glue import (
    BEHIND_CHECK_S,
    FETCH_MAX_WAIT_MS,
    FETCH_MIN_BYTES,
    FETCH_WAIT_S,
    BatchTable,
    RawSchema,
    WorkerConsumer,
    as_current,
)


def batch_table() -> Any:
    """A ``BatchTable`` of an app that never starts (memory store, no broker); made inside the
    test's running loop, which Faust's services take as theirs."""
    app = faust.App("glue-test", store="memory://", Table=BatchTable, web_enabled=False)
    return app.Table("transactions", default=None, key_type=bytes, value_type=bytes)


async def test_a_write_through_fausts_own_path_is_refused() -> None:
    table = batch_table()
    with pytest.raises(TypeError, match="store"):
        table[b"k"] = b"v"
    assert b"k" not in table.data


async def test_store_writes_the_store_alone() -> None:
    table = batch_table()
    sent: list[object] = []
    table.send_changelog = lambda *args, **kwargs: sent.append(args)

    class Message:
        partition = 2

    table.store(b"k", b"v", Message())
    assert table.data[b"k"] == b"v" and sent == []


async def test_persisted_writes_each_partitions_last_changelog_offset_once() -> None:
    table = batch_table()
    written: list[tuple[object, int]] = []

    class Store:
        def set_persisted_offset(self, tp: object, offset: int) -> None:
            written.append((tp, offset))

    class Meta:
        def __init__(self, partition: int, offset: int) -> None:
            self.partition, self.offset = partition, offset

    table._data = Store()
    table.persisted([Meta(0, 7), Meta(1, 3), Meta(0, 9), Meta(0, 8)])
    name = table.changelog_topic_name
    assert name == "glue-test-transactions-changelog"
    assert written == [(TP(name, 0), 9), (TP(name, 1), 3)]


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
    c._read_offset = {}  # Faust's: nothing delivered yet

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


@pytest.fixture
def positioned(consumer: Any) -> Any:
    """``consumer`` with read offsets and consumer positions of its own."""
    consumer.positions = {}

    async def position(tp: Any) -> int:
        return int(consumer.positions[tp])

    consumer.position = position
    return consumer


async def test_a_partition_whose_position_is_past_what_was_delivered_is_fetched_again(
    positioned: Any,
) -> None:
    # delivered up to 393, but the consumer is at 550: 394-549 fetched and dropped, and no
    # newer record has come to show the jump
    positioned._read_offset.update({RAW0: 393, RAW1: 40})
    positioned.positions.update({RAW0: 550, RAW1: 41})
    await positioned._wait_next_records(1.0)
    assert positioned.sought == [(0, 393)]
    positioned.positions[RAW0] = 394  # sought back, delivered again up to 393
    positioned._next_behind_check = 0.0
    await positioned._wait_next_records(1.0)
    assert positioned.sought == [(0, 393)]


async def test_the_position_is_compared_at_most_every_behind_check_s(positioned: Any) -> None:
    positioned._read_offset[RAW0] = 10
    positioned.positions[RAW0] = 11
    await positioned._wait_next_records(1.0)
    positioned.positions[RAW0] = 20
    await positioned._wait_next_records(1.0)  # within BEHIND_CHECK_S of the last comparison
    assert positioned.sought == []
    positioned._next_behind_check = 0.0
    await positioned._wait_next_records(1.0)
    assert positioned.sought == [(0, 10)]
    assert 0 < BEHIND_CHECK_S <= 1


async def test_the_same_place_behind_twice_is_left_to_faust(positioned: Any) -> None:
    positioned._read_offset[RAW0] = 10
    positioned.positions[RAW0] = 20  # records deleted by retention: the consumer moved on
    await positioned._wait_next_records(1.0)
    positioned._next_behind_check = 0.0
    await positioned._wait_next_records(1.0)
    assert positioned.sought == [(0, 10)]


async def test_positions_of_other_topics_and_unread_partitions_are_not_compared(
    positioned: Any,
) -> None:
    positioned._read_offset.update({LOG0: 3})  # a compacted changelog: gaps by nature
    positioned.positions.update({LOG0: 9, RAW1: 70})  # RAW1: nothing read since assignment
    await positioned._wait_next_records(1.0)
    assert positioned.sought == []


async def test_a_seek_while_comparing_replaces_the_refetch(positioned: Any) -> None:
    positioned._read_offset[RAW0] = 10

    async def position(tp: Any) -> int:
        positioned._seek_epoch += 1  # a rebalance sought to the commit meanwhile
        return 20

    positioned.position = position
    await positioned._wait_next_records(1.0)
    assert positioned.sought == []


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


async def test_load_reads_what_store_wrote_and_none_for_a_key_never_written() -> None:
    table = batch_table()

    class Message:
        partition = 0

    table.store(b"k", b"v", Message())
    assert table.load(b"k", Message()) == b"v"
    assert table.load(b"other", Message()) is None


async def test_the_raw_schema_makes_events_of_the_messages_own_key_value_and_headers() -> None:
    app = faust.App("glue-test", store="memory://", web_enabled=False)
    topic = app.topic("raw", schema=RawSchema())
    headers = [("id", b"r-1"), ("provider", b"coinbase")]
    message = Message("raw", 3, 17, 0.0, 0, headers, b"coinbase:p-1", b'{"a": 1}', None)
    event = await topic.decode(message, propagate=True)
    assert type(event) is faust.Event
    assert (event.key, event.value, event.message) == (b"coinbase:p-1", b'{"a": 1}', message)
    assert event.headers == dict(headers) and event.app is app
    empty = Message("raw", 3, 18, 0.0, 0, [], None, None, None)  # as Faust's raw codec: None
    assert ((e := await topic.decode(empty)).key, e.value) == (None, None)


def test_the_raw_schema_replaces_what_faust_compiles_for_a_topic() -> None:
    """Topic.__init__ takes its ``decode`` from ``schema.compile(app, ...)``: the override
    applies only while Faust still calls it so."""
    source = inspect.getsource(faust.Topic._compile_decode)
    assert "self.decode = self.schema.compile(" in source
