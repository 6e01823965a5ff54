"""The few places where the worker reaches into Faust beyond its documented API, in one place.

Each is covered by tests/unit/streams/test_faust_glue.py, which fails when faust-streaming
changes what is relied on here (decision 0005, decision 0006).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Coroutine, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import faust
import faust.streams as faust_streams
import faust.transport.drivers.aiokafka as aiokafka_driver
from faust.types import EventT
from faust.types.tuples import FutureMessage
from mode.services import WaitResults

log = logging.getLogger("streams")


@contextmanager
def as_current(event: EventT[Any]) -> Iterator[None]:
    """Make ``event`` Faust's current event, as during its own iteration: a table write takes
    its store and its changelog partition from the current event. A batch (``take_events``)
    has none of its own; Faust sets the same context variable when it delivers one event."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


class AckedTable(faust.Table[Any, Any]):
    """A table whose changelog deliveries can be awaited (``take_unacked``).

    Faust's ``Table.on_key_set`` sends the changelog record and drops the future: a failed
    delivery would go unnoticed while the source offsets commit. This is the same method,
    keeping the future, so that a batch commits only after its changelog is acknowledged."""

    def on_key_set(self, key: Any, value: Any) -> None:
        fut = self.send_changelog(self.partition_for_key(key), key, value)
        self.__dict__.setdefault("_unacked", []).append(fut)
        partition = fut.message.partition
        assert partition is not None
        self._maybe_set_key_ttl(key, partition)
        self._sensor_on_set(self, key, value)

    def take_unacked(self) -> list[FutureMessage]:
        """The changelog deliveries sent since the last call."""
        unacked: list[FutureMessage] = self.__dict__.pop("_unacked", [])
        return unacked


class WorkerConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer with two changes to its fetch loop (``_drain_messages``).

    1. **No tasks per message** (decision 0008). Faust hands each message to the topic
       conductor with ``await self.wait_first(callback(message), self.suspend_flow.wait())``:
       four futures and an ``asyncio.wait`` per message, so that a delivery blocked on a full
       stream buffer can be abandoned when the flow is suspended. Almost no delivery ever
       blocks. ``wait_first`` here first runs the delivery up to its first suspension, as
       Python 3.12's eager tasks do; only one that does suspend goes on as Faust's
       ``wait_first`` with the suspend event.
    2. **No fetched record left behind** (decision 0009). aiokafka advances its position past
       every record of a fetch when it hands them over; if Faust's loop then stops before
       delivering them all (it is cancelled or restarted during a rebalance, after the
       partitions were already sought to their committed offsets), the next fetch starts
       after them, and Faust counts the jump as a gap it may commit over: records lost. Before
       each fetch, a partition whose previous fetch was not delivered to its end, with no seek
       since, is sought back to the first record not delivered."""

    _fetched: dict[Any, tuple[int, int]] = {}  # per partition: the previous fetch's offsets
    _fetched_epoch = -1
    _seek_epoch = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        deliver = self.callback
        delivered: dict[Any, int] = {}  # per partition, the last offset delivered

        async def callback(message: Any) -> None:
            await deliver(message)
            delivered[message.tp] = message.offset

        self.callback, self._delivered = callback, delivered

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if timeout is not None or len(coros) != 2 or not isinstance(coros[0], Coroutine):
            return await super().wait_first(*coros, timeout=timeout)
        delivery, other = coros
        try:
            pending = delivery.send(None)
        except StopIteration as done:  # completed without suspending: the fast path
            if isinstance(other, Coroutine):
                other.close()  # never started; closing it keeps "never awaited" away
            return WaitResults([delivery], [done.value], False)
        return await super().wait_first(_Resumed(delivery, pending), other)

    async def _wait_next_records(self, timeout: float) -> Any:
        await self._refetch_undelivered()
        records, active = await super()._wait_next_records(timeout)
        self._fetched = {
            tp: (rs[0].offset, rs[-1].offset) for tp, rs in (records or {}).items() if rs
        }
        self._fetched_epoch = self._seek_epoch
        return records, active

    async def _refetch_undelivered(self) -> None:
        fetched, self._fetched = self._fetched, {}
        if not fetched or self._fetched_epoch != self._seek_epoch or not self.flow_active:
            return  # a seek since (it set the positions anew), or a rebalance under way
        assigned, delivered = self.assignment(), self._delivered
        for tp, (first, last) in fetched.items():
            done = delivered.get(tp)
            resume = first if done is None or done < first else done + 1
            read = self._read_offset.get(tp)  # Faust skips what is below it as already read
            if read is not None:
                resume = max(resume, read)
            if resume <= last and tp in assigned:
                log.warning("fetching %s again from %d: fetched to %d", tp, resume, last)
                await self.seek(tp, resume)

    async def seek(self, partition: Any, offset: int) -> None:
        self._seek_epoch += 1
        await super().seek(partition, offset)

    async def perform_seek(self) -> None:
        self._seek_epoch += 1
        await super().perform_seek()

    async def seek_wait(self, partitions: Any) -> None:
        self._seek_epoch += 1
        await super().seek_wait(partitions)


class _Resumed:
    """An awaitable that goes on with a coroutine already run up to its first suspension,
    where it yielded ``pending`` (what it waits for) to whoever drives it."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                try:
                    yield pending
                except BaseException as exc:  # thrown in by the driving task (a cancellation)
                    pending = coro.throw(exc)
                else:
                    pending = coro.send(None)
            except StopIteration as done:
                return done.value


class WorkerTransport(aiokafka_driver.Transport):
    """The aiokafka transport with ``WorkerConsumer``; set as ``app.transport`` (a public
    setter of ``faust.App``) before the worker starts."""

    Consumer = WorkerConsumer
