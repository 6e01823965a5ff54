"""The few places where the worker reaches into Faust beyond its documented API, in one place.

Each is covered by tests/unit/streams/test_faust_glue.py, which fails when faust-streaming
changes what is relied on here (decision 0005, decision 0006).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Coroutine, Iterable, Iterator
from contextlib import contextmanager, suppress
from time import monotonic
from typing import Any, cast

import faust
import faust.streams as faust_streams
import faust.transport.drivers.aiokafka as aiokafka_driver
from aiokafka.errors import IllegalStateError
from faust.sensors.monitor import Monitor
from faust.types import TP, EventT
from mode.services import WaitResults

from pipeline import eager

log = logging.getLogger("streams")


class _Event:
    """The least of a Faust event that a table needs to pick its partition: the message."""

    def __init__(self, message: Any) -> None:
        self.message = message


@contextmanager
def as_current(message: Any) -> Iterator[None]:
    """Make an event of ``message`` Faust's current event, as during its own iteration: a
    table read or write takes its store and its changelog partition from the current event.
    A batch (``take_events``) has none of its own; Faust sets the same context variable when
    it delivers one event."""
    event = _Event(message)  # held here: Faust keeps only a weak reference
    token = faust_streams._current_event.set(weakref.ref(cast(EventT[Any], event)))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)
        del event


class RawSchema(faust.Schema[bytes, bytes]):
    """Bytes in, bytes out: the raw topic's records become events with the message's own key
    and value. Faust's schema would pass each through its serializer registry, key and value
    (the "raw" codec, an identity) on every message; this one makes the event at once.
    Installed through ``app.topic(schema=...)``, Faust's public extension point."""

    def __init__(self) -> None:
        super().__init__(key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw")  # fmt: skip

    def compile(self, app: Any, *, default_propagate: bool = False, **_: Any) -> Any:
        conf = app.conf

        async def decode(message: Any, *, propagate: bool = default_propagate) -> Any:
            return conf.Event(app, message.key, message.value, message.headers, message)

        return decode


class BatchTable(faust.Table[Any, Any]):
    """The ``transactions`` table, written a batch at a time by the worker (decision 0150).

    ``table[key] = value`` in Faust writes the store and hands the changelog record to Faust's
    producer buffer (a ``FutureMessage``, the topic's send path, a dropped delivery future)
    and, once it is acknowledged, writes its offset to RocksDB: per record. Here ``store``
    writes the store alone, in the current record's partition as Faust does; the worker sends
    the changelog record (same key, value and partition, to ``changelog_topic_name``) with the
    batch's other records and awaits its ack; ``persisted`` then writes each partition's last
    changelog offset once per batch, before the batch's source offsets may commit. Recovery
    reads the changelog from that offset on: never past what the store holds."""

    def on_key_set(self, key: Any, value: Any) -> None:
        raise TypeError("write this table with store() and send its changelog record")

    def store(self, key: bytes, value: bytes, message: Any) -> None:
        """Put ``value`` in the store of ``message``'s partition (no changelog record)."""
        with as_current(message):
            self.data[key] = value

    def load(self, key: bytes, message: Any) -> bytes | None:
        """The value of ``key`` in the store of ``message``'s partition, or None: one read
        (``table.get`` asks the store whether it has the key, then reads it)."""
        with as_current(message):
            value: bytes | None = self.data.get(key)
            return value

    def persisted(self, acked: Iterable[Any]) -> None:
        """Each partition's last offset among ``acked`` changelog records (their metadata),
        written to its store: where recovery will read the changelog from."""
        last: dict[int, int] = {}
        for meta in acked:
            last[meta.partition] = max(meta.offset, last.get(meta.partition, -1))
        name = self.changelog_topic_name
        for partition, offset in last.items():
            self.data.set_persisted_offset(TP(name, partition), offset)


#: how long the fetch loop waits for records in one call (Faust: a second); see WorkerConsumer
FETCH_WAIT_S = 0.05


#: how often the fetch loop compares each raw partition's position with what it delivered
BEHIND_CHECK_S = 0.5


#: the broker answers the worker's fetch once this much is there, or after FETCH_MAX_WAIT_MS
#: (decision 0110): at 1,000 webhooks/s about 50 fetches a second instead of one per produce
#: of ingest (~200), for at most 20 ms more latency
FETCH_MIN_BYTES = 32 * 1024
FETCH_MAX_WAIT_MS = 20


class WorkerConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer fetches in batches: Faust passes
    neither ``fetch_min_bytes`` (so 1: every fetch returns with the first record there) nor a
    setting for it, and hard-codes ``fetch_max_wait_ms``; both are set on the consumer before
    it starts (aiokafka hands them to its fetcher at start)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_min_bytes = FETCH_MIN_BYTES
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class WorkerConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer, fetching in batches (``WorkerConsumerThread``), with three
    changes to its fetch loop (``_drain_messages``).

    1. **No tasks per message** (decision 0008). Faust hands each message to the topic
       conductor with ``await self.wait_first(callback(message), self.suspend_flow.wait())``:
       four futures and an ``asyncio.wait`` per message, so that a delivery blocked on a full
       stream buffer can be abandoned when the flow is suspended. Almost no delivery ever
       blocks. ``wait_first`` here first runs the delivery up to its first suspension, as
       Python 3.12's eager tasks do; only one that does suspend goes on as Faust's
       ``wait_first`` with the suspend event.
    2. **A jump is fetched again, not committed over** (decision 0009). On a topic that has
       no gaps (not compacted, no transactions: the raw topic), a fetch that jumps past the
       last offset delivered means records were fetched and then dropped (Faust's loop is
       stopped and restarted during a rebalance after aiokafka has moved past them). Faust
       counts the jump as a gap and may commit over it: records lost. Here the partition is
       sought back to the last offset read before the next fetch; what comes twice is
       harmless, every step being idempotent. A jump seen twice at the same place is a real
       gap (records deleted by retention) and left to Faust. A partition that gets no newer
       record shows no jump: before a fetch (every ``BEHIND_CHECK_S`` at most), one whose
       consumer position is past the record after the last delivered is fetched again too
       (``_behind``). Not seen by either: a single record dropped right after a seek (Faust's
       read offset is then the next to read, so its position is one past it either way).
    3. **A short wait per fetch** (decision 0100). While a stream's buffer is full, Faust
       leaves its partitions out of the fetch, and a fetch for the others (here the
       assignor's leader topic alone, which has no records) then waits up to its timeout,
       one second, even once the full buffer has drained
       and its partition's records are already fetched: the stream idles for most of that
       second, every few thousand records when there is a backlog. With ``FETCH_WAIT_S``
       the loop asks again soon, with the partitions that are fetchable by then."""

    _holes: dict[Any, int] = {}  # per partition, where to fetch again from
    _holes_epoch = 0
    _seek_epoch = 0
    _seen_jumps: frozenset[tuple[Any, int]] = frozenset()
    _next_behind_check = 0.0

    def _new_consumer_thread(self) -> Any:
        return WorkerConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if timeout is not None or len(coros) != 2 or not isinstance(coros[0], Coroutine):
            return await super().wait_first(*coros, timeout=timeout)
        delivery, other = coros
        done, result = eager.step(delivery)
        if done:  # completed without suspending: the fast path
            if isinstance(other, Coroutine):
                other.close()  # never started; closing it keeps "never awaited" away
            return WaitResults([delivery], [result], False)
        return await super().wait_first(result, other)

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        # Faust's read offset: the last offset delivered, or, after a seek, the next to read
        read = offset_from - 1
        gapless = tp.topic in self.transport.gapless_topics  # type: ignore[attr-defined]
        if not gapless or (tp, read) in self._seen_jumps:
            await super()._add_gap(tp, offset_from, offset_to)
            return
        self._seen_jumps |= {(tp, read)}
        self._hole(tp, read)
        log.warning("%s jumped from %d to %d: fetching it again from %d", tp, read, offset_to, read)

    def _hole(self, tp: Any, offset: int) -> None:
        """Fetch ``tp`` again from ``offset`` before the next fetch, unless a seek comes first."""
        if self._holes_epoch != self._seek_epoch:
            self._holes, self._holes_epoch = {}, self._seek_epoch
        self._holes = {**self._holes, tp: min(self._holes.get(tp, offset), offset)}

    async def _wait_next_records(self, timeout: float) -> Any:
        await self._behind()
        holes, self._holes = self._holes, {}
        if holes and self._holes_epoch == self._seek_epoch:  # else a seek since set them anew
            assigned = self.assignment()
            for tp, offset in holes.items():
                if tp in assigned:
                    with suppress(IllegalStateError):  # unassigned meanwhile
                        await self.seek(tp, offset)
        return await super()._wait_next_records(min(timeout, FETCH_WAIT_S))

    async def _behind(self) -> None:
        """A partition of a gapless topic whose consumer position is past the record after
        the last one delivered had records fetched and dropped: it is fetched again from the
        last offset delivered, as for a jump (at most every ``BEHIND_CHECK_S``)."""
        now = monotonic()
        if now < self._next_behind_check:
            return
        self._next_behind_check = now + BEHIND_CHECK_S
        gapless = self.transport.gapless_topics  # type: ignore[attr-defined]
        epoch = self._seek_epoch
        for tp in self.assignment():
            read = self._read_offset.get(tp)
            if tp.topic not in gapless or read is None or (tp, read) in self._seen_jumps:
                continue
            try:
                position = await self.position(tp)
            except Exception:  # no longer assigned, or no position yet: nothing to compare
                continue
            if epoch != self._seek_epoch:
                return  # a seek meanwhile: Faust reads again from where it sought
            if position is not None and position > read + 1:
                self._seen_jumps |= {(tp, read)}
                self._hole(tp, read)
                log.warning(
                    "%s is at %d, delivered up to %d: fetching it again from %d",
                    tp, position, read, read,
                )  # fmt: skip

    async def seek(self, partition: Any, offset: int) -> None:
        self._seek_epoch += 1
        await super().seek(partition, offset)

    async def perform_seek(self) -> None:
        self._seek_epoch += 1
        await super().perform_seek()

    async def seek_wait(self, partitions: Any) -> None:
        self._seek_epoch += 1
        await super().seek_wait(partitions)


class LeanMonitor(Monitor):
    """Faust's monitor, keeping only what Faust itself reads of it.

    The monitor is a sensor that Faust calls four times per message and twice per produce, to
    count and time everything for its web views (off here; the worker's metrics are our own,
    streams.metrics). Kept: when each partition's stream last took an event, which Faust's
    slow-processing warnings read (``stream_inbound_time``); the offset and commit hooks,
    called per fetch and per commit, stay Faust's."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_table_get(self, table: Any, key: Any) -> None:
        pass

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        pass

    def on_send_initiated(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_send_completed(self, *args: Any, **kwargs: Any) -> None:
        pass


class WorkerTransport(aiokafka_driver.Transport):
    """The aiokafka transport with ``WorkerConsumer``; set as ``app.transport`` (a public
    setter of ``faust.App``) before the worker starts. ``gapless_topics``: the topics whose
    offsets have no gaps (decision 0009)."""

    Consumer = WorkerConsumer
    gapless_topics: frozenset[str] = frozenset()
