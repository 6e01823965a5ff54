"""Inspect: one payment's whole journey, stage by stage, by its id or its human reference.

Raw webhooks in Kafka, normalized events (``payments.events``), applied and refused
transitions (``payments.transitions``), the Postgres row and history, the ClickHouse rows.
"""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import clickhouse_connect
import orjson
from aiokafka.partitioner import DefaultPartitioner

from ops import kafka_io, reference
from ops.errors import OpsError
from pipeline.settings import Settings
from streams.model import transaction_key


async def _keyed(bootstrap: str, topic: str, key: bytes, partitions: int) -> list[dict[str, Any]]:
    """Records of one key: only the partition the key hashes to is read."""
    partition = DefaultPartitioner()(key, list(range(partitions)), list(range(partitions)))
    c = await kafka_io.consumer(bootstrap)
    out = []
    try:
        async for r in kafka_io.read(c, topic, await kafka_io.spans(c, topic, [partition])):
            if r.key == key:
                out.append({"offset": r.offset, **orjson.loads(r.value)})
    finally:
        await c.stop()
    return out


async def _raw(bootstrap: str, topic: str, raw_ids: set[str]) -> list[dict[str, Any]]:
    """The raw webhooks behind the events: ingest keys them by their id, so a scan by key."""
    c = await kafka_io.consumer(bootstrap)
    out = []
    try:
        async for r in kafka_io.read(c, topic, await kafka_io.spans(c, topic)):
            if r.key and r.key.decode(errors="replace") in raw_ids:
                headers = {k: v.decode(errors="replace") for k, v in r.headers or []}
                out.append(
                    {
                        "partition": r.partition,
                        "offset": r.offset,
                        "headers": headers,
                        "body": base64.b64encode(r.value or b"").decode(),
                    }
                )
    finally:
        await c.stop()
    return out


async def journey(settings: Settings, provider: str, wanted: str) -> dict[str, Any]:
    """``wanted``: the provider's payment id, or its human reference (Coinbase: the code)."""
    t = settings.topics
    boot, dsn = settings.kafka.bootstrap, settings.postgres.dsn.get_secret_value()
    external_id, ref = wanted, None
    row, history = await _postgres(dsn, provider, wanted)
    if row is None and (found := await reference.resolve(dsn, boot, t.raw, provider, wanted)):
        external_id, ref = found, wanted
        row, history = await _postgres(dsn, provider, external_id)
    key = transaction_key(provider, external_id).encode()
    events = await _keyed(boot, t.events, key, t.partitions)
    transitions = await _keyed(boot, t.transitions, key, t.partitions)
    raw_ids = {e["raw_id"] for e in events if e.get("raw_id")}
    raw = await _raw(boot, t.raw, raw_ids) if raw_ids else []
    ch_events, ch_deliveries = _clickhouse(settings, provider, external_id)
    return {
        "provider": provider,
        "external_id": external_id,
        "reference": ref,
        "raw_webhooks": raw,
        "events": events,
        "transitions": transitions,
        "postgres": {"transaction": row, "history": history},
        "clickhouse": {"payment_events": ch_events, "ingest_log": ch_deliveries},
    }


async def _postgres(dsn: str, provider: str, external_id: str) -> tuple[Any, list[Any]]:
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise OpsError(f"Postgres unreachable: {type(exc).__name__}") from None
    try:
        row = await conn.fetchrow(
            "SELECT * FROM transactions WHERE provider = $1 AND external_id = $2",
            provider,
            external_id,
        )
        hist = await conn.fetch(
            "SELECT * FROM transaction_events WHERE provider = $1 AND "
            "external_id = $2 ORDER BY version, occurred_at",
            provider,
            external_id,
        )
    finally:
        await conn.close()
    return (_plain(dict(row)) if row else None), [_plain(dict(h)) for h in hist]


def _clickhouse(settings: Settings, provider: str, external_id: str) -> tuple[list[Any], list[Any]]:
    try:
        ch = clickhouse_connect.get_client(dsn=settings.clickhouse.url)
        q = ch.query(
            "SELECT * FROM payment_events FINAL WHERE provider = {p:String} AND "
            "external_id = {x:String} ORDER BY occurred_at",
            parameters={"p": provider, "x": external_id},
        )
        events = [_plain(dict(zip(q.column_names, r, strict=True))) for r in q.result_rows]
        ids = [e["event_id"] for e in events]
        d = ch.query(
            "SELECT delivery_id, outcome, received_at, processed_at FROM ingest_log FINAL "
            "WHERE event_id IN {ids:Array(String)} ORDER BY received_at",
            parameters={"ids": ids},
        )
        deliveries = [_plain(dict(zip(d.column_names, r, strict=True))) for r in d.result_rows]
    except Exception as exc:  # clickhouse-connect raises several types for "unreachable"
        raise OpsError(f"ClickHouse unreachable: {type(exc).__name__}") from None
    return events, deliveries


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """JSON-friendly values (Decimal, datetime) for printing."""
    plain: dict[str, Any] = orjson.loads(orjson.dumps(d, default=str))
    return plain
