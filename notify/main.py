"""Entry point of the notifier: ``pipeline-notify`` (``python -m notify.main``).

One process: the intake (transitions -> outbox, offsets committed after the insert), the
dispatcher (outbox -> merchants' endpoints), the attempt log (-> ClickHouse) and the backlog
gauges. Several notifiers may run side by side: Kafka shares the transitions among them, and
outbox rows are leased with ``SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from tenacity import RetryCallState

from notify import READY_LINE, metrics
from notify.attempts import AttemptLog
from notify.deadletters import DeadLetters
from notify.dispatch import Dispatcher, watch_backlog
from notify.http import Client
from notify.intake import OutboxSink
from notify.message import Endpoint
from notify.schedule import Schedule
from pipeline.entry import run_service
from pipeline.retry import Backoff
from pipeline.settings import NotifySettings, Settings
from sinks.base import run_sink, start_sink
from sinks.main import _consumer, dead_letters

log = logging.getLogger("notify")


def endpoints(cfg: NotifySettings) -> list[Endpoint]:
    return [
        Endpoint(
            e.url,
            tuple(s.get_secret_value() for s in e.secrets),
            None if e.statuses is None else frozenset(e.statuses),
            e.timeout_s,
            e.max_in_flight,
        )
        for e in cfg.endpoints
    ]


def schedule(cfg: NotifySettings) -> Schedule:
    return Schedule(cfg.retry_first_s, cfg.retry_factor, cfg.retry_max_s, cfg.give_up_after_s)


async def ensure_topic(bootstrap: str, name: str, partitions: int, replication: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if name not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, partitions, replication)])
    finally:
        await admin.close()


#: the broker answers the notifier's fetch once this much is there, or after FETCH_WAIT_MS
#: (decision 0110): a notification may wait that long before it is queued
FETCH_MIN_BYTES = 64 * 1024
FETCH_WAIT_MS = 200


async def serve(settings: Settings) -> None:
    cfg, t, ch = settings.notify, settings.topics, settings.clickhouse
    eps = endpoints(cfg)
    for e in eps:
        metrics.register(e.url)
    stop, wake = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    dsn = settings.postgres.dsn.get_secret_value()
    pool = await _pool(dsn, stop, 8)
    # leases need no fsync: a lease lost with a crash only makes its row due again sooner
    leases = await _pool(dsn, stop, 2, {"synchronous_commit": "off"})
    backoff = Backoff(settings.sinks.retry_base_s, settings.sinks.retry_max_s, attempts=0)
    sink = OutboxSink(pool, eps, wake)
    await start_sink(sink, backoff, stop)
    await ensure_topic(settings.kafka.bootstrap, cfg.dlq_topic, 1, t.replication)
    consumer = _consumer(
        settings, cfg.group, t.transitions, wait_ms=FETCH_WAIT_MS, min_bytes=FETCH_MIN_BYTES
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap, acks="all", enable_idempotence=True
    )
    client, attempts = Client(), AttemptLog(ch.url, ch.database, ch.username,
                                            ch.password.get_secret_value())  # fmt: skip
    await consumer.start()
    await producer.start()
    await client.start()
    dispatcher = Dispatcher(
        pool, leases, eps, schedule(cfg), client, attempts,
        DeadLetters(producer, cfg.dlq_topic, t.transitions), wake, cfg.poll_interval_ms / 1000,
    )  # fmt: skip
    os.write(2, f"{READY_LINE}: {len(eps)} endpoints\n".encode())
    try:
        await asyncio.gather(
            run_sink(sink, consumer, settings.sinks.batch_size, 50, backoff, stop,
                     dead_letters(producer, "notify", t.dlq)),
            dispatcher.run(stop),
            attempts.run(stop),
            watch_backlog(pool, eps, stop),
        )  # fmt: skip
    finally:
        await attempts.flush()
        await consumer.stop()
        await producer.stop()
        await client.close()
        await pool.close()
        await leases.close()


async def _pool(
    dsn: str, stop: asyncio.Event, size: int, server: dict[str, str] | None = None
) -> asyncpg.Pool:
    def failed(state: RetryCallState) -> None:
        if state.attempt_number == 1 and state.outcome is not None:
            log.warning("notify: Postgres unreachable at start, retrying: %s",
                        state.outcome.exception())  # fmt: skip

    transient = (OSError, asyncpg.PostgresError)
    async for attempt in Backoff(0.5, 10.0, 0).retrying(transient, until=stop, after=failed):
        with attempt:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=size, server_settings=server or {}, reset=_keep_session
            )
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What the pool runs when a connection comes back, after asyncpg's own step (which rolls
    back a transaction left open): nothing. asyncpg's default also sends ``SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``, a round trip and four
    statements per query here (the claim, the write-back); the notifier's connections hold no
    session state to reset (no SET, LISTEN, cursor or session-level advisory lock)."""


def main() -> None:
    run_service("pipeline-notify", serve, lambda s: (s.notify.metrics_host, s.notify.metrics_port))


if __name__ == "__main__":
    main()
