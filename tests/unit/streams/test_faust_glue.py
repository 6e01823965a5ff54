"""What streams.faust_glue relies on inside faust-streaming: these fail when Faust changes it."""

from __future__ import annotations

import asyncio
import inspect
import textwrap
from typing import Any

import faust
import faust.streams as faust_streams

from streams.faust_glue import AckedTable, WorkerConsumer, as_current

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


def test_as_current_sets_and_restores_fausts_current_event() -> None:
    class Event:
        pass

    event = Event()
    assert faust_streams.current_event() is None
    with as_current(event):  # type: ignore[arg-type]
        assert faust_streams.current_event() is event
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
    def __init__(self, partition: int) -> None:
        self.partition = partition


P0, P1 = _TP(0), _TP(1)


def _fetched(
    fetched: dict[Any, tuple[int, int]],
    delivered: dict[Any, int],
    read: dict[Any, int | None],
    *,
    assigned: tuple[Any, ...] = (P0, P1),
    seek_since: bool = False,
) -> Any:
    """A WorkerConsumer after a fetch of ``fetched`` of which ``delivered`` went through."""
    c: Any = WorkerConsumer.__new__(WorkerConsumer)
    c._fetched, c._fetched_epoch, c._seek_epoch = fetched, 4, 5 if seek_since else 4
    c._delivered, c._read_offset = delivered, read
    c.flow_active = True
    c.assignment = lambda: set(assigned)
    c.sought = []

    async def seek(tp: Any, offset: int) -> None:
        c.sought.append((tp.partition, offset))

    c.seek = seek
    return c


async def test_records_fetched_and_not_delivered_are_fetched_again() -> None:
    # the loop stopped after 268 (aiokafka's position is already 279): from 269 again
    c = _fetched({P0: (268, 278)}, {P0: 268}, {P0: 268})
    await c._refetch_undelivered()
    assert c.sought == [(0, 269)]


async def test_a_fetch_after_a_seek_with_nothing_delivered_starts_again_at_its_first() -> None:
    c = _fetched({P0: (268, 278)}, {}, {P0: 268})  # the seek set the read offset to 268
    await c._refetch_undelivered()
    assert c.sought == [(0, 268)]


async def test_a_fetch_delivered_to_its_end_is_left_alone() -> None:
    c = _fetched({P0: (268, 278), P1: (40, 40)}, {P0: 278, P1: 40}, {P0: 278, P1: 40})
    await c._refetch_undelivered()
    assert c.sought == []


async def test_records_faust_skips_as_already_read_are_not_fetched_again() -> None:
    c = _fetched({P0: (100, 110)}, {}, {P0: 500})
    await c._refetch_undelivered()
    assert c.sought == []


async def test_no_refetch_after_a_seek_or_for_a_partition_no_longer_held() -> None:
    c = _fetched({P0: (268, 278)}, {P0: 268}, {P0: 268}, seek_since=True)
    await c._refetch_undelivered()
    d = _fetched({P0: (268, 278)}, {P0: 268}, {P0: 268}, assigned=(P1,))
    await d._refetch_undelivered()
    assert c.sought == [] and d.sought == []
