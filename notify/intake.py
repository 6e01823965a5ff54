"""The intake: ``payments.transitions`` -> the outbox, as a sink of the one sink contract.

Delivery guarantee: at least once into the outbox, exactly once in effect. A batch's wanted
deliveries are inserted in one transaction and the Kafka offsets move only after that
(``sinks.base.run_sink``); a redelivered batch, a re-sent duplicate transition or a replay
finds its rows by ``webhook-id`` and inserts nothing. No HTTP here: a slow endpoint never
holds up the stream. An unreadable transition is dead-lettered by the sink loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
from aiokafka import ConsumerRecord
from msgspec.structs import replace

from domain.records import Transition
from notify import metrics, outbox
from notify.message import Delivery, Endpoint, deliveries, parse
from notify.outbox import Conn
from sinks.errors import POSTGRES_DOWN, SinkUnavailable

Timed = tuple[Transition, int]

ORDER_IDS = """
SELECT provider, external_id, order_id FROM checkouts
WHERE (provider, external_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""


class OutboxSink:
    name = "notify-outbox"

    def __init__(self, pool: asyncpg.Pool, endpoints: Sequence[Endpoint], wake: asyncio.Event):
        self._pool, self._endpoints, self._wake = pool, endpoints, wake

    async def start(self) -> None:
        try:
            async with self._pool.acquire() as conn:
                await outbox.migrate(conn)
        except POSTGRES_DOWN as exc:
            raise SinkUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc

    def decode(self, record: ConsumerRecord) -> Timed:
        """The transition and when it was published (its Kafka timestamp)."""
        return parse(record.value), record.timestamp

    async def write(self, transitions: Sequence[Timed]) -> None:
        if not self._endpoints:
            return
        try:
            await self._insert(transitions)
        except POSTGRES_DOWN as exc:
            raise SinkUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc
        self._wake.set()

    async def _insert(self, transitions: Sequence[Timed]) -> None:
        async with self._pool.acquire() as conn:
            known = await _order_ids(conn, [t for t, _ in transitions])
            ds: list[Delivery] = []
            for t, ms in transitions:
                if not t.order_id and (t.provider, t.external_id) in known:
                    t = replace(t, order_id=known[t.provider, t.external_id])
                ds += deliveries(t, self._endpoints, ms)
            async with conn.transaction():
                await outbox.insert(conn, ds)
        for d in ds:
            metrics.series(d.endpoint).queued.inc()

    async def close(self) -> None:
        return None


async def _order_ids(conn: Conn, transitions: list[Transition]) -> dict[tuple[str, str], str]:
    """The checkout's order id of each payment whose transition names no order (if known):
    the transition takes it. Only the first insert of a delivery counts, so a later lookup
    cannot change a body."""
    missing = [t for t in transitions if not t.order_id and t.to_status != t.from_status]
    if not missing:
        return {}
    try:
        rows = await conn.fetch(
            ORDER_IDS, [t.provider for t in missing], [t.external_id for t in missing]
        )
    except asyncpg.UndefinedTableError:  # the Postgres sink has not created it yet
        return {}
    return {(r["provider"], r["external_id"]): r["order_id"] for r in rows}
