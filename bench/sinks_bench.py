"""Sinks: rows per second of each sink against its raw driver writing the same rows in the
same batches (asyncpg COPY; clickhouse-connect insert), in one run, over several batch
sizes, with the p99 flush time of each."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
from aiokafka import ConsumerRecord
from clickhouse_connect import get_async_client
from msgspec.structs import replace

from bench import common
from domain import machine
from domain.model import Status
from domain.records import SNAPSHOT, TRANSITION, PaymentEvent, encode
from pipeline.settings import Settings
from sinks.ch_schema import DDL
from sinks.clickhouse import (
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    ClickHouseSink,
    delivery_row,
    event_row,
)
from sinks.pg_schema import migrate
from sinks.postgres import PostgresSink, history_rows, newest_snapshots, tx_rows
from stack import proc
from testing.traffic import payments

BATCHES = (100, 500, 1000, 2000, 5000)


def records(count: int) -> tuple[list[ConsumerRecord], list[ConsumerRecord]]:
    """State snapshots (one per payment) and transition records (one per event)."""
    snaps: list[ConsumerRecord] = []
    trans: list[ConsumerRecord] = []
    now = int(time.time() * 1000)
    for i, pay in enumerate(payments(count, seed=5)):
        state = None
        for ev in pay.events:
            e = PaymentEvent(
                f"{ev.provider}:{ev.event_id}",
                ev.provider,
                ev.external_id,
                Status(ev.status),
                ev.occurred_at,
                ev.status,
                ev.amount,
                ev.currency,
                ev.order_id,
                ev.occurred_at,
                "r",
            )
            state, effects = machine.apply(state, e)
            for eff in effects:
                t = replace(
                    eff,
                    processed_at_ms=now,
                    delivery_id=f"d-{e.event_id}",
                    delivery_received_at_ms=now,
                    outcome="applied",
                )
                trans.append(
                    ConsumerRecord("t", 0, len(trans), 0, 0, None, encode(t), None, 0, 0, [])
                )
        assert state is not None
        snaps.append(
            ConsumerRecord("s", 0, i, 0, 0, None, encode(state.snapshot()), None, 0, 0, [])
        )
    return snaps, trans


#: the database server's pid, whose CPU each measurement reports beside the sink's own
SERVER_PID = {"pid": 0}


def decoding(sink: Any) -> Callable[[list[ConsumerRecord]], Awaitable[None]]:
    """The sink's write of a batch as the sink loop calls it: each record decoded, then written."""

    async def write(batch: list[ConsumerRecord]) -> None:
        await sink.write([sink.decode(r) for r in batch])

    return write


async def timed(
    batches: list[list[ConsumerRecord]], write: Callable[[list[ConsumerRecord]], Awaitable[None]]
) -> dict[str, float]:
    """Rows per second, p99 flush, and CPU µs per record: this process's (the sink's decoding,
    rows and driver) and the database server's."""
    flushes = []
    cpu, server = time.process_time(), proc.cpu_seconds(SERVER_PID["pid"])
    started = time.perf_counter()
    for b in batches:
        t0 = time.perf_counter()
        await write(b)
        flushes.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    rows = sum(len(b) for b in batches)
    p99 = statistics.quantiles(flushes, n=100)[98] if len(flushes) > 1 else flushes[0]
    return {
        "rows_per_s": round(rows / elapsed),
        "p99_flush_ms": round(p99 * 1000, 1),
        "sink_us_per_row": round((time.process_time() - cpu) / rows * 1e6, 1),
        "db_us_per_row": round((proc.cpu_seconds(SERVER_PID["pid"]) - server) / rows * 1e6, 1),
    }


def chunks(items: list[ConsumerRecord], size: int) -> list[list[ConsumerRecord]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


#: the columns of ``transactions`` and ``transaction_events`` the Postgres sink writes
TX_COLUMNS = [
    *("provider", "external_id", "status", "amount", "currency", "order_id"),
    *("expected_amount", "expected_currency", "late", "version", "updated_at"),
]
HISTORY_COLUMNS = [
    *("event_id", "provider", "external_id", "status", "effective_status", "applied", "note"),
    *("provider_status", "amount", "currency", "occurred_at", "received_at", "version"),
    *("from_status", "to_status", "reference"),
]


async def postgres(dsn: str, snaps: list[ConsumerRecord], size: int) -> dict[str, Any]:
    """``snaps``: snapshots and transitions (topic "t"), as the sink consumes both."""
    admin = await asyncpg.connect(dsn)
    for db in ("bench_sink", "bench_raw"):
        await admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {db}")
    await admin.close()
    base = dsn.rsplit("/", 1)[0]
    sink = PostgresSink(f"{base}/bench_sink", "t")
    await sink.start()
    ours = await timed(chunks(snaps, size), decoding(sink))
    await sink.close()
    raw = await asyncpg.connect(f"{base}/bench_raw")
    await migrate(raw)  # the same tables, indexes and keys

    async def copy(batch: list[ConsumerRecord]) -> None:
        """The same decode and rows, then plain COPY in one transaction: the driver's best
        (no version guard, no upsert: it only holds when every row is new)."""
        snaps = newest_snapshots([SNAPSHOT.decode(r.value) for r in batch if r.topic != "t"])
        history = history_rows([TRANSITION.decode(r.value) for r in batch if r.topic == "t"])
        async with raw.transaction():
            await raw.copy_records_to_table(
                "transactions", records=list(zip(*tx_rows(snaps), strict=True)), columns=TX_COLUMNS
            )
            await raw.copy_records_to_table(
                "transaction_events",
                records=list(zip(*history, strict=True)),
                columns=HISTORY_COLUMNS,
            )

    driver = await timed(chunks(snaps, size), copy)
    await raw.close()
    return {
        "sink": ours,
        "driver": driver,
        "ratio": round(ours["rows_per_s"] / driver["rows_per_s"], 3),
    }


async def clickhouse(url: str, trans: list[ConsumerRecord], size: int) -> dict[str, Any]:
    client = await get_async_client(dsn=url)
    for db in ("bench_sink", "bench_raw"):
        await client.command(f"DROP DATABASE IF EXISTS {db}")
        await client.command(f"CREATE DATABASE {db}")
    # the sink: every key looked up before its insert (decision 0017 says why)
    sink = ClickHouseSink(url, "bench_sink", "default", "", "dlq")
    await sink.start()
    ours = await timed(chunks(trans, size), decoding(sink))
    await sink.close()
    raw = await get_async_client(dsn=url, database="bench_raw")
    for ddl in DDL:  # the same tables and materialized views as the sink's database
        await raw.command(ddl)

    async def insert(batch: list[ConsumerRecord]) -> None:  # the same rows, no dedup lookups
        docs = [TRANSITION.decode(r.value) for r in batch]
        await raw.insert("payment_events", [event_row(d) for d in docs], column_names=EVENT_COLUMNS)
        await raw.insert(
            "ingest_log", [delivery_row(d) for d in docs], column_names=DELIVERY_COLUMNS
        )

    driver = await timed(chunks(trans, size), insert)
    await raw.close()
    await client.close()
    return {
        "sink": ours,
        "driver": driver,
        "ratio": round(ours["rows_per_s"] / driver["rows_per_s"], 3),
    }


def bench(settings: Settings, count: int = 8000) -> dict[str, Any]:
    snaps, trans = records(count)
    out: dict[str, Any] = {
        "snapshots": len(snaps),
        "transitions": len(trans),
        "postgres": {},
        "clickhouse": {},
    }
    with common.infra(settings, "sinks") as info:
        for size in BATCHES:
            SERVER_PID["pid"] = info.parts["postgres"].pid
            out["postgres"][size] = asyncio.run(postgres(info.postgres_dsn, snaps + trans, size))
            SERVER_PID["pid"] = info.parts["clickhouse"].pid
            out["clickhouse"][size] = asyncio.run(clickhouse(info.clickhouse_url, trans, size))
    return out


if __name__ == "__main__":
    from pipeline.settings import load_settings

    print(
        orjson.dumps(
            bench(load_settings()), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
        ).decode()
    )
