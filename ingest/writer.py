"""The raw writer: one idempotent Kafka producer (acks=all); ``write`` returns after the ack.

The producer starts lazily, so the service comes up (and answers 503) while the broker is
down, and reconnects by itself when it returns.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingest.errors import BrokerUnavailable
from pipeline.envelope import RawWebhook

log = logging.getLogger("ingest.writer")


class RawWriter:
    def __init__(self, bootstrap: str, topic: str, timeout_s: float) -> None:
        self._bootstrap, self._topic, self._timeout = bootstrap, topic, timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                p = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=1,
                    request_timeout_ms=int(self._timeout * 1000),
                )
                try:
                    await asyncio.wait_for(p.start(), self._timeout)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await p.stop()
                    raise BrokerUnavailable(f"Kafka unreachable: {type(exc).__name__}") from exc
                self._producer = p
        return self._producer

    async def write(self, raw: RawWebhook, key: bytes | None = None) -> None:
        producer = await self._ensure()
        try:
            fut = await producer.send(
                self._topic, raw.body, key=key or raw.id.encode(), headers=raw.to_kafka_headers()
            )
            await asyncio.wait_for(fut, self._timeout)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("kafka write failed: %s", type(exc).__name__)
            raise BrokerUnavailable(f"Kafka did not acknowledge: {type(exc).__name__}") from exc

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
