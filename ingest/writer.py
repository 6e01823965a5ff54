"""The raw writer: one idempotent Kafka producer (acks=all); ``write`` returns after the ack.

The producer starts lazily, so the service comes up (and answers 503) while the broker is
down, and reconnects by itself when it returns.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from domain.dlq import dead_letter
from domain.records import RawWebhook, encode
from ingest.errors import BrokerUnavailable
from pipeline.partitioner import CachedPartitioner

log = logging.getLogger("ingest.writer")


class Writer(Protocol):
    """Where ingest puts what it accepted; ``write`` returns only after a durable ack."""

    async def write(self, raw: RawWebhook) -> None: ...

    async def write_dead_letter(self, raw: RawWebhook, reason: str) -> None: ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...


class RawWriter:
    def __init__(
        self, bootstrap: str, topic: str, dlq_topic: str, timeout_s: float, linger_ms: int = 5
    ) -> None:
        self._bootstrap, self._topic, self._timeout = bootstrap, topic, timeout_s
        self._linger_ms = linger_ms
        self._dlq_topic = dlq_topic
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = CachedPartitioner()
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                p = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=self._linger_ms,
                    partitioner=self._partitioner,
                    # aiokafka sends one request at a time per broker, with at most one batch
                    # per partition: 16 KiB batches (the default) capped ingest at about 8
                    # bodies per partition per round trip
                    max_batch_size=512 * 1024,
                    request_timeout_ms=int(self._timeout * 1000),
                )
                try:
                    await asyncio.wait_for(p.start(), self._timeout)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await p.stop()
                    raise BrokerUnavailable(f"Kafka unreachable: {type(exc).__name__}") from exc
                self._producer = p
        return self._producer

    async def write(self, raw: RawWebhook) -> None:
        """The raw request to the raw topic; returns once the broker acknowledged it."""
        await self._send(self._topic, raw.kafka_key, raw.body, raw.to_kafka_headers())

    async def write_dead_letter(self, raw: RawWebhook, reason: str) -> None:
        """An authentic request that cannot be read: kept on the dead-letter topic."""
        record = dead_letter(
            stage="ingest",
            reason=reason,
            topic=self._topic,
            partition=-1,
            offset=-1,
            key=raw.id.encode(),
            value=raw.body,
            headers=raw.to_kafka_headers(),
            failed_at_ms=raw.received_at_ms,
            dead_letter_id=f"ingest:{raw.id}",
        )
        await self._send(self._dlq_topic, raw.id.encode(), encode(record), [])

    async def _send(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        producer = await self._ensure()
        try:
            fut = await producer.send(topic, value, key=key, headers=headers)
            await asyncio.wait_for(fut, self._timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("kafka write failed: %s", type(exc).__name__)
            self._discard(producer)
            raise BrokerUnavailable(f"Kafka did not acknowledge: {type(exc).__name__}") from exc

    def _discard(self, producer: AIOKafkaProducer) -> None:
        """Start afresh after any failed write. A write given up on (timeout) leaves the
        idempotent producer's sequence numbers ahead of the broker's; after a broker restart
        that producer would fail every later write with OutOfOrderSequenceNumber. A new
        producer gets a new producer id, and the next request starts it."""
        if self._producer is not producer:
            return  # another failed write already discarded it
        self._producer = None
        task = asyncio.get_running_loop().create_task(self._stop(producer))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _stop(producer: AIOKafkaProducer) -> None:
        await producer.stop()

    async def ready(self) -> bool:
        try:
            p = await self._ensure()
            await asyncio.wait_for(p.client.force_metadata_update(), self._timeout)
            return True
        except (BrokerUnavailable, KafkaError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class MemoryWriter:
    """In-memory double of RawWriter: keeps what it was given; ``down`` makes it refuse."""

    def __init__(self) -> None:
        self.raw: list[RawWebhook] = []
        self.dead: list[tuple[RawWebhook, str]] = []
        self.down = False

    async def write(self, raw: RawWebhook) -> None:
        if self.down:
            raise BrokerUnavailable("Kafka unreachable: test double is down")
        self.raw.append(raw)

    async def write_dead_letter(self, raw: RawWebhook, reason: str) -> None:
        if self.down:
            raise BrokerUnavailable("Kafka unreachable: test double is down")
        self.dead.append((raw, reason))

    async def ready(self) -> bool:
        return not self.down

    async def close(self) -> None:
        return None
