"""Entry point of the sinks: ``pipeline-sinks`` runs the Postgres and ClickHouse sinks."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from domain.dlq import dead_letter
from domain.records import encode
from pipeline.entry import run_service
from pipeline.retry import Backoff
from pipeline.settings import Settings
from sinks.base import DeadLetter, Sink, run_sink, start_sink
from sinks.clickhouse import ClickHouseSink
from sinks.postgres import PostgresSink


def _consumer(
    settings: Settings, group: str, *topics: str, wait_ms: int = 50, min_bytes: int = 1
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=600_000,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        # aiokafka does not fetch a partition while the broker holds another fetch request:
        # new records of it wait for that long poll, up to 500 ms by default (measured: the
        # p99 of state record -> Postgres row was 611 ms at 250 webhooks/s, p50 29 ms)
        fetch_max_wait_ms=wait_ms,
        fetch_min_bytes=min_bytes,
    )


#: the broker answers a sink's fetch once this much is there, or after its wait (decision
#: 0110): a few fetches a second at low rates rather than one per produce of the worker
PG_MIN_BYTES = 64 * 1024
CH_MIN_BYTES = 256 * 1024  # its batches linger for a second anyway: it may wait 250 ms


async def serve(settings: Settings) -> None:
    t, cfg = settings.topics, settings.sinks
    pairs: list[tuple[Sink[Any], AIOKafkaConsumer, int]] = [
        (
            PostgresSink(settings.postgres.dsn.get_secret_value(), t.transitions),
            _consumer(settings, "sink-postgres", t.state, t.transitions, min_bytes=PG_MIN_BYTES),
            0,
        ),
        (
            ClickHouseSink(
                settings.clickhouse.url,
                settings.clickhouse.database,
                settings.clickhouse.username,
                settings.clickhouse.password.get_secret_value(),
                t.dlq,
            ),
            _consumer(
                settings,
                "sink-clickhouse",
                t.transitions,
                t.dlq,
                wait_ms=250,
                min_bytes=CH_MIN_BYTES,
            ),
            cfg.clickhouse_linger_ms,
        ),
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    backoff = Backoff(cfg.retry_base_s, cfg.retry_max_s, attempts=0)
    for sink, consumer, _ in pairs:
        await start_sink(sink, backoff, stop)
        await consumer.start()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    os.write(2, b"sinks ready\n")  # whatever the log level: the local stack's launcher waits for it
    try:
        await asyncio.gather(
            *(
                run_sink(
                    sink,
                    consumer,
                    cfg.batch_size,
                    cfg.flush_interval_ms,
                    backoff,
                    stop,
                    dead_letters(producer, sink.name, t.dlq),
                    linger_ms,
                )
                for sink, consumer, linger_ms in pairs
            )
        )
    finally:
        for _, consumer, _ in pairs:
            await consumer.stop()
        await producer.stop()


def dead_letters(producer: AIOKafkaProducer, sink: str, dlq_topic: str) -> DeadLetter:
    """A record its database refuses goes to the dead-letter topic with the reason; a dead
    letter refused in turn is only logged (it stays on the dead-letter topic: no loop)."""
    log = logging.getLogger("sinks")

    async def send(r: ConsumerRecord, reason: str) -> None:
        if r.topic == dlq_topic:
            log.error(
                "sink %s cannot store dead letter %s:%s:%s: %s",
                sink,
                r.topic,
                r.partition,
                r.offset,
                reason,
            )
            return
        log.warning(
            "sink %s dead-letters %s:%s:%s: %s", sink, r.topic, r.partition, r.offset, reason
        )
        record = dead_letter(
            stage=f"sink-{sink}",
            reason=reason,
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            key=r.key,
            value=r.value,
            headers=list(r.headers or []),
            failed_at_ms=int(time.time() * 1000),
        )
        await producer.send_and_wait(dlq_topic, encode(record), key=r.key)

    return send


def main() -> None:
    run_service("pipeline-sinks", serve, lambda s: (s.sinks.metrics_host, s.sinks.metrics_port))


if __name__ == "__main__":
    main()
