"""Sinks on the real stack: replays add nothing, versions never go backward, outages of
Postgres and ClickHouse lose nothing and double nothing, migrations rerun cleanly."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import clickhouse_connect
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from pipeline.retry import Backoff
from pipeline.settings import Settings
from sinks.base import run_sink
from sinks.clickhouse import ClickHouseSink
from sinks.pg_schema import migrate
from sinks.postgres import PostgresSink, Record
from stack import launcher
from testing.traffic import payments, requests
from tests.integration.test_stream_semantics import assert_converged, send
from tests.integration.waiting import drained, eventually, pipeline_groups


def snapshot(ext: str, status: str, version: int, amount: str = "1.00") -> dict[str, Any]:
    """A ``payments.state`` snapshot of a standard payment without events."""
    return {
        "provider": "standard",
        "external_id": ext,
        "status": status,
        "version": version,
        "amount": amount,
        "currency": "USDC",
        "order_id": "o",
        "checkout": None,
        "late": False,
        "updated_at": "2026-11-01T00:00:00Z",
        "events": [],
    }


async def counts(pg: asyncpg.Pool, ch: Any) -> tuple[int, ...]:
    tx = await pg.fetchval("SELECT count(*) FROM transactions")
    hist = await pg.fetchval("SELECT count(*) FROM transaction_events")
    versions = await pg.fetchval("SELECT coalesce(sum(version), 0) FROM transactions")
    events = ch.query("SELECT count() FROM payment_events").result_rows[0][0]
    deliveries = ch.query("SELECT count() FROM ingest_log").result_rows[0][0]
    return tx, hist, versions, events, deliveries


async def own_database(stack: launcher.StackInfo, name: str) -> str:
    """A fresh database for rows that come from no webhook (``pipeline rebuild`` compares the
    shared one with the raw topic)."""
    admin = await asyncpg.connect(stack.postgres_dsn)
    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    return stack.postgres_dsn.rsplit("/", 1)[0] + f"/{name}"


async def test_a_full_replay_of_the_output_topics_changes_nothing(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    pays = payments(60, seed=505)
    await send(
        api, requests(pays, settings.providers, seed=505, duplicate_share=0.3, now=time.time())
    )
    await assert_converged(pg, ch, pays)
    await drained(stack.kafka_bootstrap, pipeline_groups(settings.topics))  # last batches in
    before = await counts(pg, ch)
    t = settings.topics
    replays = [
        (PostgresSink(stack.postgres_dsn), (t.state,)),
        (
            ClickHouseSink(stack.clickhouse_url, "default", "default", "", t.dlq),
            (t.transitions, t.dlq),
        ),
    ]
    for sink, topics in replays:
        await sink.start()
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=stack.kafka_bootstrap,
            group_id=f"replay-{uuid.uuid4().hex}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        stop = asyncio.Event()
        task = asyncio.create_task(run_sink(sink, consumer, 500, 100, Backoff(0.1, 1, 0), stop))
        try:
            while True:  # until the replay group has read everything there is
                await asyncio.sleep(0.5)
                ends = await consumer.end_offsets(list(consumer.assignment()))
                committed = {tp: await consumer.committed(tp) for tp in ends}
                if consumer.assignment() and all(
                    committed[tp] == end for tp, end in ends.items() if end
                ):
                    break
        finally:
            stop.set()
            await task
            await consumer.stop()
    assert await counts(pg, ch) == before


async def test_an_older_version_never_moves_a_row_backward(stack: launcher.StackInfo) -> None:
    dsn = await own_database(stack, "versions_test")
    pg = await asyncpg.connect(dsn)
    sink = PostgresSink(dsn)
    ext = f"ver-{uuid.uuid4().hex[:8]}"

    def snap(version: int, status: str) -> Record:
        doc = snapshot(ext, status, version)
        return sink.decode(
            ConsumerRecord(
                "payments.state", 0, version, 0, 0, ext.encode(), orjson.dumps(doc), None, 0, 0, []
            )
        )

    await sink.start()
    await sink.write([snap(3, "completed")])
    await sink.write([snap(2, "pending"), snap(1, "new")])  # late, lower versions
    await sink.write([snap(3, "failed")])  # an equal version does not overwrite either
    row = await pg.fetchrow("SELECT status, version FROM transactions WHERE external_id = $1", ext)
    assert (row["status"], row["version"]) == ("completed", 3)
    await sink.write([snap(4, "refunded"), snap(2, "pending")])
    row = await pg.fetchrow("SELECT status, version FROM transactions WHERE external_id = $1", ext)
    assert (row["status"], row["version"]) == ("refunded", 4)
    await sink.close()
    await pg.close()


async def test_the_checkouts_row_keeps_the_earliest_registration(
    stack: launcher.StackInfo,
) -> None:
    """The streams' winner (``domain.machine.checkout_order``): earliest, then by content in
    code point order whatever the database's collation ("B" < "a")."""
    dsn = await own_database(stack, "checkouts_test")
    sink = PostgresSink(dsn)
    ext = f"reg-{uuid.uuid4().hex[:8]}"

    def snap(version: int, at: str, order_id: str) -> Record:
        checkout = {
            "provider": "standard",
            "external_id": ext,
            "order_id": order_id,
            "amount": "5.00",
            "currency": "USDC",
            "created_at": f"2026-11-01T00:00:{at}Z",
        }
        doc = {**snapshot(ext, "new", version), "checkout": checkout}
        return sink.decode(
            ConsumerRecord(
                "payments.state", 0, version, 0, 0, ext.encode(), orjson.dumps(doc), None, 0, 0, []
            )
        )

    async def registered() -> str:
        return str(await pg.fetchval("SELECT order_id FROM checkouts WHERE external_id = $1", ext))

    await sink.start()
    pg = await asyncpg.connect(dsn)
    await sink.write([snap(1, "10", "late")])
    assert await registered() == "late"
    await sink.write([snap(2, "05", "a")])  # an earlier registration overrules it
    assert await registered() == "a"
    await sink.write([snap(3, "05", "B")])  # same millisecond: "B" precedes "a"
    assert await registered() == "B"
    await sink.write([snap(1, "10", "late"), snap(2, "05", "a")])  # replays change nothing
    assert await registered() == "B"
    await sink.close()
    await pg.close()


async def test_migrations_run_twice_without_error(stack: launcher.StackInfo) -> None:
    conn = await asyncpg.connect(stack.postgres_dsn)
    try:
        await migrate(conn)
        assert await migrate(conn) == 0
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") >= 1
    finally:
        await conn.close()


async def _outage(
    part: str,
    stack: launcher.StackInfo,
    api: httpx.AsyncClient,
    pg: asyncpg.Pool,
    ch: Any,
    settings: Settings,
    seed: int,
) -> None:
    run = Path(stack.run_dir)
    pays = payments(90, seed=seed)
    reqs = requests(pays, settings.providers, seed=seed, duplicate_share=0.2, now=time.time())
    third = len(reqs) // 3
    log = Path(stack.parts["sinks"].log)
    paused = f"sink {part} unavailable, pausing consumption"
    await send(api, reqs[:third])
    pauses = log.read_text().count(paused)
    await asyncio.to_thread(launcher.stop_part, run, part)
    await send(api, reqs[third : 2 * third])

    async def pauses_now() -> int:
        return log.read_text().count(paused)

    # the sink met the dead database with records to write, and paused
    await eventually(pauses_now, lambda n: n > pauses, what=f"the sinks pausing for {part}")
    await asyncio.to_thread(launcher.start_part, run, part)
    await send(api, reqs[2 * third :])
    await assert_converged(pg, ch, pays)


async def test_postgres_down_and_back_loses_and_doubles_nothing(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    await _outage("postgres", stack, api, pg, ch, settings, seed=606)
    log = Path(stack.parts["sinks"].log).read_text()
    assert "sink postgres unavailable, pausing consumption" in log
    assert "sink postgres back after" in log


async def test_clickhouse_down_and_back_loses_and_doubles_nothing(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    await _outage("clickhouse", stack, api, pg, ch, settings, seed=707)
    log = Path(stack.parts["sinks"].log).read_text()
    assert "sink clickhouse unavailable, pausing consumption" in log


async def test_a_large_batch_goes_through_clickhouse_once(
    stack: launcher.StackInfo, ch: Any
) -> None:
    """A 6000-record batch (its id lookup larger than one HTTP parameter may be) lands, once."""
    from bench.sinks_bench import records

    ch.command("DROP DATABASE IF EXISTS big_batch")
    ch.command("CREATE DATABASE big_batch")
    _, trans = records(2000)
    assert len(trans) > 5000
    sink = ClickHouseSink(stack.clickhouse_url, "big_batch", "default", "", "dlq")
    await sink.start()
    decoded = [sink.decode(r) for r in trans]
    await sink.write(decoded)
    await sink.write(decoded)  # a redelivered batch adds nothing
    await sink.close()
    got = ch.query("SELECT count(), uniqExact(event_id) FROM big_batch.payment_events").result_rows[
        0
    ]
    assert got == (len(trans), len(trans))


async def test_a_snapshot_postgres_refuses_is_dead_lettered_and_the_rest_lands(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    ext = f"poison-{uuid.uuid4().hex[:8]}"
    doc = snapshot(ext, "completed", 1, amount="1e-20000")  # asyncpg cannot encode the exponent
    p = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await p.start()
    await p.send_and_wait(settings.topics.state, orjson.dumps(doc), key=f"standard:{ext}".encode())
    await p.stop()
    pays = payments(12, seed=1717)
    await send(api, requests(pays, settings.providers, seed=1717, now=time.time()))
    await assert_converged(pg, ch, pays)  # the partition did not stop at the poison

    async def dead() -> list[Any]:
        return ch.query(
            "SELECT stage, reason FROM dead_letters WHERE stage = 'sink-postgres'"
        ).result_rows

    rows = await eventually(dead, lambda r: len(r) >= 1, what="the sink's dead letter")
    assert "numeric" in rows[0][1].lower()  # asyncpg cannot encode the exponent
    assert await pg.fetchval("SELECT count(*) FROM transactions WHERE external_id = $1", ext) == 0


#: the ClickHouse schema of the release before the idempotent views (enough of it to migrate)
LEGACY_DDL = [
    """CREATE TABLE ingest_log (delivery_id String, provider LowCardinality(String),
        event_id String, outcome LowCardinality(String), received_at DateTime64(3, 'UTC'),
        processed_at DateTime64(3, 'UTC'),
        latency_ms Int64 MATERIALIZED dateDiff('millisecond', received_at, processed_at)
    ) ENGINE = ReplacingMergeTree ORDER BY delivery_id""",
    """CREATE TABLE payment_events (event_id String, provider LowCardinality(String),
        external_id String, status LowCardinality(String),
        effective_status LowCardinality(String), from_status LowCardinality(String),
        to_status LowCardinality(String), applied Bool, note String, provider_status String,
        amount Nullable(Decimal(38, 18)), currency Nullable(String), order_id Nullable(String),
        occurred_at DateTime64(3, 'UTC'), received_at DateTime64(3, 'UTC'),
        processed_at DateTime64(3, 'UTC'), version UInt64, raw_id String
    ) ENGINE = ReplacingMergeTree ORDER BY (provider, event_id)""",
    """CREATE TABLE events_per_minute (minute DateTime('UTC'), provider LowCardinality(String),
        status LowCardinality(String), events UInt64
    ) ENGINE = SummingMergeTree ORDER BY (minute, provider, status)""",
    """CREATE MATERIALIZED VIEW events_per_minute_mv TO events_per_minute AS
    SELECT toStartOfMinute(processed_at) AS minute, provider, effective_status AS status,
           count() AS events FROM payment_events GROUP BY minute, provider, status""",
    """CREATE TABLE volume_per_currency (day Date, currency LowCardinality(String),
        provider LowCardinality(String), payments UInt64, volume Decimal(38, 18)
    ) ENGINE = SummingMergeTree ORDER BY (day, currency, provider)""",
    """CREATE MATERIALIZED VIEW volume_per_currency_mv TO volume_per_currency AS
    SELECT toDate(occurred_at) AS day, ifNull(currency, '') AS currency, provider,
           count() AS payments, sum(ifNull(amount, toDecimal128(0, 18))) AS volume
    FROM payment_events WHERE effective_status IN ('completed', 'overpaid') AND applied
    GROUP BY day, currency, provider""",
]


async def test_clickhouse_of_an_earlier_release_is_migrated_and_backfilled(
    stack: launcher.StackInfo, ch: Any
) -> None:
    """The old summing views (which double counted) give way to the idempotent views, which
    are filled from the events already stored; the new columns are added."""
    ch.command("DROP DATABASE IF EXISTS legacy_ch")
    ch.command("CREATE DATABASE legacy_ch")
    old = clickhouse_connect.get_client(dsn=stack.clickhouse_url, database="legacy_ch")
    for ddl in LEGACY_DDL:
        old.command(ddl)
    old.command(
        "INSERT INTO payment_events VALUES "
        "('e1', 'coinbase', 'p1', 'pending', 'pending', 'new', 'pending', true, '', 'x', "
        "10, 'USDC', NULL, '2026-11-01 10:00:00', '2026-11-01 10:00:01', "
        "'2026-11-01 10:00:01.25', 1, 'r1'), "
        "('e2', 'coinbase', 'p1', 'completed', 'completed', 'pending', 'completed', true, '', "
        "'x', 10, 'USDC', NULL, '2026-11-01 10:05:00', '2026-11-01 10:05:01', "
        "'2026-11-01 10:05:01.5', 2, 'r2')"
    )
    for _ in range(2):  # a second start finds everything in place
        sink = ClickHouseSink(stack.clickhouse_url, "legacy_ch", "default", "", "dlq")
        await sink.start()
        await sink.close()
    engines = dict(
        old.query("SELECT name, engine FROM system.tables WHERE database = 'legacy_ch'").result_rows
    )
    assert engines["events_per_minute"] == engines["volume_per_currency"] == "View"
    assert "events_per_minute_mv" not in engines and "volume_per_currency_mv" not in engines
    assert old.query("SELECT status, settled FROM payment_summary").result_rows == [
        ("completed", True)
    ]
    assert old.query("SELECT sum(events) FROM events_per_minute").result_rows == [(2,)]
    assert old.query(
        "SELECT count() FROM system.columns WHERE database = 'legacy_ch' "
        "AND table = 'payment_events' AND name IN ('payment_amount', 'provider_time')"
    ).result_rows == [(2,)]
    old.close()
