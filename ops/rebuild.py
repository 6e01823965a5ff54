"""Rebuild: all state again from ``webhooks.raw`` alone, into a fresh database, then compare.

The raw topic is the source of truth. This reads all of it, runs the same pure steps the
stream workers run (normalize, dedupe, state machine), writes the result with the same
Postgres sink into a fresh database, and reports whether it matches the live one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from aiokafka import ConsumerRecord

from ops import kafka_io
from ops.errors import OpsError
from pipeline.envelope import KIND_CHECKOUT, EnvelopeError, RawWebhook
from sinks.postgres import PostgresSink
from streams.checkouts import parse_checkout
from streams.errors import NormalizeError
from streams.model import Checkout, PaymentEvent
from streams.providers import normalize
from streams.step import Entry, process

COMPARED = "provider, external_id, status, amount, currency, version, expected_amount"


@dataclass
class Report:
    raw_records: int = 0
    dead_letters: int = 0
    rebuilt: int = 0
    live: int = 0
    matched: int = 0
    differences: list[str] = field(default_factory=list)
    database: str = ""

    @property
    def match(self) -> bool:
        return not self.differences and self.rebuilt == self.live


def fold_raw(
    records: list[tuple[bytes, list[tuple[str, bytes]]]], ttl_ms: int
) -> tuple[dict[str, Entry], int]:
    """The pure pipeline over raw records: table entries by transaction, and the dead count."""
    entries: dict[str, Entry] = {}
    dead = 0
    for value, headers in records:
        try:
            raw = RawWebhook.from_kafka(value, headers)
            items: list[PaymentEvent | Checkout] = (
                [parse_checkout(raw)] if raw.kind == KIND_CHECKOUT else list(normalize(raw))
            )
        except (EnvelopeError, NormalizeError):
            dead += 1
            continue
        for item in items:
            entries[item.tx_key] = process(entries.get(item.tx_key, Entry()), item, ttl_ms).entry
    return entries, dead


def _with_db(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _fresh_database(dsn: str, name: str) -> str:
    try:
        conn = await asyncpg.connect(_with_db(dsn, "postgres"), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise OpsError(f"Postgres unreachable: {type(exc).__name__}") from None
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_db(dsn, name)


async def _rows(dsn: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(f"SELECT {COMPARED} FROM transactions")
    finally:
        await conn.close()
    return {(r["provider"], r["external_id"]): tuple(r) for r in rows}


async def rebuild(
    bootstrap: str,
    raw_topic: str,
    dsn: str,
    ttl_ms: int,
    progress: Callable[[int], None] = lambda n: None,
) -> Report:
    report = Report()
    c = await kafka_io.consumer(bootstrap)
    records: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    try:
        async for r in kafka_io.read(c, raw_topic, await kafka_io.spans(c, raw_topic)):
            records.append((r.value or b"", list(r.headers or [])))
            if len(records) % 1000 == 0:
                progress(1000)
    finally:
        await c.stop()
    progress(len(records) % 1000)
    report.raw_records = len(records)
    entries, report.dead_letters = fold_raw(records, ttl_ms)
    name = f"{urlsplit(dsn).path.lstrip('/') or 'pipeline'}_rebuild"
    fresh = await _fresh_database(dsn, name)
    report.database = name
    snapshots = [
        ConsumerRecord("rebuild", 0, i, 0, 0, None, orjson.dumps(e.state.to_dict()), None, 0, 0, [])
        for i, e in enumerate(entries.values())
        if e.state is not None
    ]
    sink = PostgresSink(fresh)
    await sink.start()
    try:
        for i in range(0, len(snapshots), 1000):
            await sink.write(snapshots[i : i + 1000])
    finally:
        await sink.close()
    rebuilt, live = await _rows(fresh), await _rows(dsn)
    report.rebuilt, report.live = len(rebuilt), len(live)
    for key in sorted(set(rebuilt) | set(live)):
        a, b = rebuilt.get(key), live.get(key)
        if a == b:
            report.matched += 1
        else:
            report.differences.append(f"{key[0]}/{key[1]}: rebuilt {a} live {b}")
    return report
