"""Inspect: one payment's whole journey, stage by stage, by its id or its human reference.

Raw webhooks in Kafka (``webhooks.raw``, keyed by payment), the events the worker reads from
them, applied and refused transitions (``payments.transitions``), the Postgres row and
history, the ClickHouse rows.
"""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import clickhouse_connect
import msgspec
import orjson
from aiokafka.partitioner import DefaultPartitioner

from domain.model import transaction_key
from domain.records import Checkout
from ops import kafka_io, reference
from ops.errors import OpsError
from pipeline.settings import Settings
from streams import flow


def _partition(key: bytes, partitions: int) -> int:
    return int(DefaultPartitioner()(key, list(range(partitions)), list(range(partitions))))


async def _records(bootstrap: str, topic: str, key: bytes, partitions: int) -> list[Any]:
    """Records of one key: only the partition the key hashes to is read."""
    c = await kafka_io.consumer(bootstrap)
    try:
        spans = await kafka_io.spans(c, topic, [_partition(key, partitions)])
        return [r async for r in kafka_io.read(c, topic, spans) if r.key == key]
    finally:
        await c.stop()


def _raw_webhook(r: Any) -> dict[str, Any]:
    return {
        "partition": r.partition,
        "offset": r.offset,
        "headers": {k: v.decode(errors="replace") for k, v in r.headers or []},
        "body": base64.b64encode(r.value or b"").decode(),
    }


def _normalized(r: Any) -> list[dict[str, Any]]:
    """What the worker read from one raw record: its checkout or events (normalized here
    again, as the worker does), or why it could not."""
    try:
        _, records = flow.records_of(r)
    except Exception as exc:
        return [{"offset": r.offset, "error": f"{type(exc).__name__}: {exc}"}]
    return [
        {"offset": r.offset, "type": "checkout" if isinstance(rec, Checkout) else "event"}
        | msgspec.to_builtins(rec)
        for rec in records
    ]


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
    raw = await _records(boot, t.raw, key, t.partitions)  # keyed by payment (decision 0007)
    transitions = [
        {"offset": r.offset, **orjson.loads(r.value)}
        for r in await _records(boot, t.transitions, key, t.partitions)
    ]
    ch_events, ch_deliveries = _clickhouse(settings, provider, external_id)
    return {
        "provider": provider,
        "external_id": external_id,
        "reference": ref,
        "raw_webhooks": [_raw_webhook(r) for r in raw],
        "events": [e for r in raw for e in _normalized(r)],
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
