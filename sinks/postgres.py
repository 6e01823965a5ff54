"""Postgres sink: ``payments.state`` snapshots -> ``transactions`` and ``checkouts``;
``payments.transitions`` -> the history, ``transaction_events``.

Only the newest snapshot of each payment in a batch is written, with upserts guarded by
version: a lower or equal version never overwrites a higher one, so a redelivered or replayed
snapshot changes nothing. A history row is an event's transition as first applied (the
version that event produced, from and to status), the same row ClickHouse keeps: the first
transition of an event wins, and a re-sent one (a duplicate's, equal to it) changes nothing.
Everything of one batch is written by one statement (one round trip, one implicit
transaction). See decisions 0031 and 0017.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from domain.records import SNAPSHOT, TRANSITION, Snapshot, Transition
from sinks.errors import POSTGRES_DOWN, RecordRefused, SinkUnavailable
from sinks.pg_schema import migrate

#: the newest snapshot of each payment; a lower or equal version never overwrites a higher one
UPSERT_TX = """
INSERT INTO transactions AS t (provider, external_id, status, amount, currency, order_id,
    expected_amount, expected_currency, late, version, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::text[], $6::text[],
    $7::numeric[], $8::text[], $9::bool[], $10::bigint[], $11::timestamptz[])
ON CONFLICT (provider, external_id) DO UPDATE SET
    status = EXCLUDED.status, amount = EXCLUDED.amount, currency = EXCLUDED.currency,
    order_id = EXCLUDED.order_id, expected_amount = EXCLUDED.expected_amount,
    expected_currency = EXCLUDED.expected_currency, late = EXCLUDED.late,
    version = EXCLUDED.version, updated_at = EXCLUDED.updated_at, written_at = now()
WHERE t.version < EXCLUDED.version
"""

#: the first transition of an event wins; rows written from snapshots before migration 2
#: (no ``from_status``) take the transition's values once
UPSERT_EVENTS = """
INSERT INTO transaction_events AS e (event_id, provider, external_id, status, effective_status,
    applied, note, provider_status, amount, currency, occurred_at, received_at, version,
    from_status, to_status, reference)
SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
    $17::bool[], $18::text[], $19::text[], $20::numeric[], $21::text[], $22::timestamptz[],
    $23::timestamptz[], $24::bigint[], $25::text[], $26::text[], $27::text[])
ON CONFLICT (event_id) DO UPDATE SET
    provider = EXCLUDED.provider, external_id = EXCLUDED.external_id, status = EXCLUDED.status,
    effective_status = EXCLUDED.effective_status, applied = EXCLUDED.applied,
    note = EXCLUDED.note, provider_status = EXCLUDED.provider_status,
    amount = EXCLUDED.amount, currency = EXCLUDED.currency,
    occurred_at = EXCLUDED.occurred_at, received_at = EXCLUDED.received_at,
    version = EXCLUDED.version, from_status = EXCLUDED.from_status,
    to_status = EXCLUDED.to_status, reference = EXCLUDED.reference
WHERE e.from_status IS NULL
"""

#: the earliest registration wins, in domain.machine.checkout_order (code point order on text)
INSERT_CHECKOUTS = """
INSERT INTO checkouts AS c (provider, external_id, order_id, amount, currency, created_at)
SELECT * FROM unnest($28::text[], $29::text[], $30::text[], $31::numeric[], $32::text[],
    $33::timestamptz[])
ON CONFLICT (provider, external_id) DO UPDATE SET
    order_id = EXCLUDED.order_id, amount = EXCLUDED.amount, currency = EXCLUDED.currency,
    created_at = EXCLUDED.created_at
WHERE (EXCLUDED.created_at, EXCLUDED.amount, EXCLUDED.currency COLLATE "C",
       EXCLUDED.order_id COLLATE "C")
    < (c.created_at, c.amount, c.currency COLLATE "C", c.order_id COLLATE "C")
"""

#: a batch in one statement, so one round trip and atomic without BEGIN/COMMIT: the three
#: upserts as data-modifying CTEs (each runs once, to completion, whether read or not; they
#: touch three different tables, so sharing one snapshot changes nothing)
WRITE_BATCH = f"""
WITH tx AS ({UPSERT_TX}), ev AS ({UPSERT_EVENTS}), co AS ({INSERT_CHECKOUTS})
SELECT 1
"""

#: the data, not the database, is at fault: isolate the record and dead-letter it
_REFUSED = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
    ValueError,
    KeyError,
    TypeError,
)

Record = Snapshot | Transition


def newest_snapshots(snaps: Sequence[Snapshot]) -> list[Snapshot]:
    """The highest-version snapshot per payment in the batch (pure)."""
    best: dict[tuple[str, str], Snapshot] = {}
    for snap in snaps:
        key = (snap.provider, snap.external_id)
        if key not in best or best[key].version < snap.version:
            best[key] = snap
    return list(best.values())


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def tx_rows(snaps: list[Snapshot]) -> list[list[Any]]:
    rows = []
    for s in snaps:
        c = s.checkout
        rows.append(
            (
                s.provider,
                s.external_id,
                s.status.value,
                s.amount,
                s.currency,
                s.order_id,
                None if c is None else c.amount,
                None if c is None else c.currency,
                s.late,
                s.version,
                s.updated_at,
            )
        )
    return _columns(rows, 11)


def history_rows(transitions: Sequence[Transition]) -> list[list[Any]]:
    """One row per event id, from its first transition in the batch: an upsert may not touch
    a row twice (two payments may even carry the same provider event id: a sender's bug, or
    a hostile one), and the first transition is the one as first applied."""
    rows: dict[str, tuple[Any, ...]] = {}
    for t in transitions:
        if t.event_id in rows:
            continue
        rows[t.event_id] = (
            t.event_id,
            t.provider,
            t.external_id,
            t.status.value,
            (t.effective or t.to_status).value,
            t.applied,
            t.note,
            t.provider_status,
            t.amount,
            t.currency,
            t.occurred_at,
            t.received_at,
            t.version,
            t.from_status.value,
            t.to_status.value,
            t.reference,
        )
    return _columns(list(rows.values()), 16)


def checkout_rows(snaps: list[Snapshot]) -> list[list[Any]]:
    rows = [
        (s.provider, s.external_id, c.order_id, c.amount, c.currency, c.created_at)
        for s in snaps
        if (c := s.checkout)
    ]
    return _columns(rows, 6)


class PostgresSink:
    """Records of ``transitions_topic`` are transitions; any other record is a snapshot."""

    name = "postgres"

    def __init__(self, dsn: str, transitions_topic: str = "payments.transitions") -> None:
        self._dsn = dsn
        self._transitions_topic = transitions_topic
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        """Connect and run the migrations."""
        try:
            await self._connection()
        except POSTGRES_DOWN as exc:
            raise SinkUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc

    def _drop_connection(self) -> None:
        """Forget a connection after any outage: it may be mid-operation, never reuse it."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=5)
            await migrate(self._conn)
            await self._prepare(self._conn)
        return self._conn

    @staticmethod
    async def _prepare(conn: asyncpg.Connection) -> None:
        """Run the statement once with no rows: asyncpg prepares it and looks up its array
        types now, not on the first real batch (that took 750 ms on a fresh stack)."""
        await conn.execute(WRITE_BATCH, *tx_rows([]), *history_rows([]), *checkout_rows([]))

    def decode(self, record: ConsumerRecord) -> Record:
        if record.topic == self._transitions_topic:
            return TRANSITION.decode(record.value or b"")
        return SNAPSHOT.decode(record.value or b"")

    async def write(self, records: Sequence[Record]) -> None:
        try:
            snaps = newest_snapshots([r for r in records if isinstance(r, Snapshot)])
            history = history_rows([r for r in records if isinstance(r, Transition)])
            conn = await self._connection()
            await conn.execute(WRITE_BATCH, *tx_rows(snaps), *history, *checkout_rows(snaps))
        except POSTGRES_DOWN as exc:
            self._drop_connection()
            raise SinkUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc
        except _REFUSED as exc:
            raise RecordRefused(f"postgres: {type(exc).__name__}: {str(exc)[:300]}") from exc

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
