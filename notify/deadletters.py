"""Deliveries given up go to the notifier's dead-letter topic (``[notify] dlq_topic``), one
record per ``webhook-id`` in the pipeline's dead-letter format (``domain.dlq``): the reason,
and as value the delivery itself, which ``pipeline notify redrive`` puts back in the outbox."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from domain.dlq import dead_letter
from domain.records import encode
from notify.outbox import Claimed

STAGE = "notify"


def delivery_doc(c: Claimed) -> dict[str, Any]:
    return {
        "webhook_id": c.webhook_id,
        "endpoint": c.endpoint,
        "provider": c.provider,
        "external_id": c.external_id,
        "version": c.version,
        "status": c.status,
        "body": c.body.decode(),
    }


def record(c: Claimed, reason: str, attempts: int, source_topic: str) -> bytes:
    doc = dead_letter(
        stage=STAGE,
        reason=reason,
        topic=source_topic,
        partition=-1,
        offset=-1,
        key=f"{c.provider}:{c.external_id}".encode(),
        value=orjson.dumps(delivery_doc(c)),
        headers=[("provider", c.provider.encode()), ("endpoint", c.endpoint.encode())],
        failed_at_ms=int(time.time() * 1000),
        attempts=attempts,
        dead_letter_id=c.webhook_id,
    )
    return encode(doc)


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, topic: str, source_topic: str) -> None:
        self._producer, self._topic, self._source = producer, topic, source_topic

    async def send(self, c: Claimed, reason: str, attempts: int) -> None:
        value = record(c, reason, attempts, self._source)
        await self._producer.send_and_wait(self._topic, value, key=c.webhook_id.encode())
