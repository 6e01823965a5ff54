"""ClickHouse sink: ``payments.transitions`` -> ``payment_events``.

Dead letters from ``webhooks.dlq`` go to ``dead_letters``.

One row per distinct event: rows whose key is already stored are skipped before the insert
(one primary-key lookup per batch), and the ReplacingMergeTree engine collapses whatever a
crash between insert and commit could still double.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from clickhouse_connect import get_async_client
from clickhouse_connect.driver.exceptions import ClickHouseError

from domain.records import DEAD_LETTER, TRANSITION, DeadLetter, Transition
from sinks.ch_schema import DDL, LEGACY, backfills
from sinks.errors import SinkUnavailable

EVENT_COLUMNS = [
    "event_id",
    "provider",
    "external_id",
    "status",
    "effective_status",
    "from_status",
    "to_status",
    "applied",
    "note",
    "provider_status",
    "amount",
    "currency",
    "payment_amount",
    "payment_currency",
    "order_id",
    "occurred_at",
    "provider_time",
    "received_at",
    "processed_at",
    "version",
    "raw_id",
]
Record = Transition | DeadLetter
DLQ_COLUMNS = [
    "id",
    "source_topic",
    "source_partition",
    "source_offset",
    "stage",
    "reason",
    "provider",
    "failed_at",
]


def _ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def event_row(t: Transition) -> list[Any]:
    return [
        t.event_id,
        t.provider,
        t.external_id,
        t.status.value,
        (t.effective or t.to_status).value,
        t.from_status.value,
        t.to_status.value,
        t.applied,
        t.note,
        t.provider_status,
        t.amount,
        t.currency,
        t.payment_amount,
        t.payment_currency,
        t.order_id,
        t.occurred_at,
        t.provider_time,
        t.received_at or t.occurred_at,
        _ms(t.processed_at_ms),
        t.version,
        t.raw_id,
    ]


DELIVERY_COLUMNS = ["delivery_id", "provider", "event_id", "outcome", "received_at", "processed_at"]


def delivery_row(t: Transition) -> list[Any]:
    return [
        t.delivery_id,
        t.provider,
        t.event_id,
        t.outcome,
        _ms(t.delivery_received_at_ms),
        _ms(t.processed_at_ms),
    ]


def dlq_delivery_row(d: DeadLetter) -> list[Any] | None:
    """A dead letter of a raw webhook is a delivery too, with outcome ``dead_letter``."""
    meta = {k: v.decode(errors="replace") for k, v in d.headers}
    if "id" not in meta:
        return None
    try:
        received = _ms(int(meta.get("received-at-ms", d.failed_at_ms)))
    except ValueError:
        received = _ms(d.failed_at_ms)
    return [meta["id"], meta.get("provider", ""), "", "dead_letter", received, _ms(d.failed_at_ms)]


MAX_PARAM_BYTES = 64 * 1024  # ClickHouse refuses an HTTP form field over 128 KiB


def _chunks(keys: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    size = 0
    for k in keys:
        if size + len(k) + 4 > MAX_PARAM_BYTES and out[-1]:
            out.append([])
            size = 0
        out[-1].append(k)
        size += len(k) + 4
    return out if out[0] else []


def dlq_row(d: DeadLetter) -> list[Any]:
    provider = ""
    for k, v in d.headers:
        if k == "provider":
            provider = v.decode(errors="replace")
    src = d.source
    return [
        d.id,
        src.topic,
        src.partition,
        src.offset,
        d.stage,
        d.reason,
        provider,
        _ms(d.failed_at_ms),
    ]


async def migrate(client: Any) -> None:
    """Bring a database to the current schema: drop the tables of an earlier schema whose
    names are now views, create what is missing, backfill aggregating views that are new."""
    for name, engine in LEGACY:
        found = await client.query(
            "SELECT engine FROM system.tables "
            "WHERE database = currentDatabase() AND name = {n:String}",
            parameters={"n": name},
        )
        if found.result_rows and found.result_rows[0][0] == engine:
            await client.command(f"DROP TABLE {name}")
    for ddl in DDL:
        await client.command(ddl)
    for target, source, insert in backfills():
        empty = await client.query(f"SELECT count() FROM (SELECT 1 FROM {target} LIMIT 1)")
        held = await client.query(f"SELECT count() FROM (SELECT 1 FROM {source} LIMIT 1)")
        if empty.result_rows[0][0] == 0 and held.result_rows[0][0] > 0:
            await client.command(insert)


class ClickHouseSink:
    name = "clickhouse"

    def __init__(
        self,
        url: str,
        database: str,
        username: str,
        password: str,
        dlq_topic: str,
    ) -> None:
        self._url, self._db, self._user, self._password = url, database, username, password
        self._dlq_topic = dlq_topic
        self._client: Any = None

    async def start(self) -> None:
        """Connect and create the tables."""
        try:
            await self._ensure()
        except (ClickHouseError, OSError) as exc:
            raise SinkUnavailable(f"clickhouse: {type(exc).__name__}: {str(exc)[:200]}") from exc

    async def _ensure(self) -> Any:
        if self._client is None:
            client = await get_async_client(
                dsn=self._url, database=self._db, username=self._user, password=self._password
            )
            await migrate(client)
            self._client = client
        return self._client

    def decode(self, record: ConsumerRecord) -> Record:
        if record.topic == self._dlq_topic:
            return DEAD_LETTER.decode(record.value or b"")
        return TRANSITION.decode(record.value or b"")

    async def write(self, records: Sequence[Record]) -> None:
        events: dict[str, list[Any]] = {}
        deliveries: dict[str, list[Any]] = {}
        dead: dict[str, list[Any]] = {}
        for r in records:
            if isinstance(r, DeadLetter):
                dead.setdefault(r.id, dlq_row(r))
                if (row := dlq_delivery_row(r)) is not None:
                    deliveries.setdefault(row[0], row)
            else:
                events.setdefault(r.event_id, event_row(r))
                if r.delivery_id:
                    deliveries.setdefault(r.delivery_id, delivery_row(r))
        try:
            client = await self._ensure()
            providers = sorted({row[1] for row in events.values()})
            await self._insert_new(
                client,
                "payment_events",
                EVENT_COLUMNS,
                events,
                "provider IN {p:Array(String)} AND event_id",
                {"p": providers},
            )
            await self._insert_new(
                client, "ingest_log", DELIVERY_COLUMNS, deliveries, "delivery_id"
            )
            await self._insert_new(client, "dead_letters", DLQ_COLUMNS, dead, "id")
        except (ClickHouseError, OSError) as exc:
            self._client = None
            raise SinkUnavailable(f"clickhouse: {type(exc).__name__}: {str(exc)[:200]}") from exc

    async def _insert_new(
        self,
        client: Any,
        table: str,
        columns: list[str],
        rows: dict[str, list[Any]],
        key_filter: str,
        params: dict[str, Any] | None = None,
    ) -> None:
        """Insert the rows whose key the table does not hold yet (primary-key lookups, in
        chunks that fit ClickHouse's limit on one HTTP query parameter)."""
        for chunk in _chunks(list(rows)):
            stored = await client.query(
                f"SELECT {columns[0]} FROM {table} WHERE {key_filter} IN {{ids:Array(String)}}",
                parameters={**(params or {}), "ids": chunk},
            )
            for (key,) in stored.result_rows:
                rows.pop(key, None)
        if rows:
            await client.insert(table, list(rows.values()), column_names=columns)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
