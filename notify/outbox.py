"""The durable outbox in Postgres: one row per delivery, keyed by its ``webhook-id``.

The intake inserts rows (``ON CONFLICT DO NOTHING``: a re-sent or replayed transition finds
its row and changes nothing, delivered or not). The dispatcher leases due rows, at most the
oldest pending version per (endpoint, payment), and writes each attempt's outcome back. A
lease that expires (a notifier killed mid-request) makes the row due again: it is re-sent
with the same id and body, so a crash re-sends at most what was not acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from notify.message import Delivery

#: a connection, or one borrowed from a pool
Conn = asyncpg.Connection | PoolConnectionProxy

SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_outbox (
    webhook_id   text PRIMARY KEY,
    endpoint     text NOT NULL,
    provider     text NOT NULL,
    external_id  text NOT NULL,
    version      bigint NOT NULL,
    status       text NOT NULL,
    body         bytea NOT NULL,
    state        text NOT NULL DEFAULT 'pending',  -- pending, delivered, dead
    attempts     integer NOT NULL DEFAULT 0,
    due_at       timestamptz NOT NULL DEFAULT now(),
    leased_until timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    transition_at timestamptz,  -- when the transition was published (its Kafka timestamp)
    finished_at  timestamptz,
    last_code    integer,
    last_error   text
);
ALTER TABLE notify_outbox ADD COLUMN IF NOT EXISTS transition_at timestamptz;
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (endpoint, due_at)
    WHERE state = 'pending';
-- a payment's pending versions at every endpoint: the claim's head-of-line check (decision 0160)
CREATE INDEX IF NOT EXISTS notify_outbox_head
    ON notify_outbox (provider, external_id, endpoint, version) WHERE state = 'pending';
DROP INDEX IF EXISTS notify_outbox_order;
"""

INSERT = """
INSERT INTO notify_outbox (webhook_id, endpoint, provider, external_id, version, status, body,
    transition_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
    $7::bytea[], $8::timestamptz[])
ON CONFLICT (webhook_id) DO NOTHING
"""

#: due rows of one endpoint, each the oldest pending version of its payment at this endpoint
CLAIM = """
UPDATE notify_outbox SET leased_until = now() + make_interval(secs => $3)
WHERE webhook_id IN (
    SELECT o.webhook_id FROM notify_outbox o
    WHERE o.endpoint = $1 AND o.state = 'pending' AND o.due_at <= now()
      AND (o.leased_until IS NULL OR o.leased_until < now())
      -- a correlated subquery (a SubPlan, run per row with its values) rather than NOT EXISTS:
      -- an anti-join may be planned as a scan of the endpoint's whole backlog per row. Found
      -- through notify_outbox_head by payment; `|| ''` keeps the planner off notify_outbox_due
      -- (which also starts with endpoint), which it chose, scanning the endpoint's whole
      -- backlog per row, whenever its statistics said the table was small (decision 0160)
      AND o.version = (
          SELECT min(p.version) FROM notify_outbox p
          WHERE p.provider = o.provider AND p.external_id = o.external_id
            AND p.endpoint || '' = o.endpoint AND p.state = 'pending')
    ORDER BY o.due_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING webhook_id, endpoint, provider, external_id, version, status, body, attempts,
    extract(epoch FROM now() - created_at)::float8 AS age_s,
    extract(epoch FROM now() - coalesce(transition_at, created_at))::float8 AS since_s
"""

#: one attempt's outcome; ``$3`` state, ``$4`` seconds until the next try (pending only)
FINISH = """
UPDATE notify_outbox AS o SET
    state = f.state, attempts = o.attempts + 1, last_code = f.code, last_error = f.error,
    leased_until = NULL,
    due_at = CASE WHEN f.state = 'pending' THEN now() + make_interval(secs => f.wait)
                  ELSE o.due_at END,
    finished_at = CASE WHEN f.state = 'pending' THEN NULL ELSE now() END
FROM unnest($1::text[], $2::int[], $3::text[], $4::float8[], $5::text[])
    AS f(webhook_id, code, state, wait, error)
WHERE o.webhook_id = f.webhook_id AND o.state = 'pending'
"""

BACKLOG = """
SELECT endpoint, count(*) AS pending, count(*) FILTER (WHERE attempts > 0) AS retrying,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_s
FROM notify_outbox WHERE state = 'pending' GROUP BY endpoint
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    webhook_id: str
    endpoint: str
    provider: str
    external_id: str
    version: int
    status: str
    body: bytes
    attempts: int  # before this one
    age_s: float  # since the transition reached the outbox
    since_s: float  # since the transition was published


@dataclass(frozen=True, slots=True)
class Outcome:
    webhook_id: str
    code: int | None
    state: str  # pending (retry later), delivered, dead
    wait_s: float
    error: str | None


async def migrate(conn: Conn) -> None:
    await conn.execute(SCHEMA)


async def insert(conn: Conn, ds: Sequence[Delivery]) -> None:
    if ds:
        await conn.execute(
            INSERT,
            [d.webhook_id for d in ds],
            [d.endpoint for d in ds],
            [d.provider for d in ds],
            [d.external_id for d in ds],
            [d.version for d in ds],
            [d.status for d in ds],
            [d.body for d in ds],
            [_at(d.transition_ms) for d in ds],
        )


def _at(ms: int) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms > 0 else None


async def claim(pool: asyncpg.Pool, endpoint: str, n: int, lease_s: float) -> list[Claimed]:
    rows = await pool.fetch(CLAIM, endpoint, n, lease_s)
    return [Claimed(**dict(r)) for r in rows]


async def finish(pool: asyncpg.Pool, outcomes: Sequence[Outcome]) -> None:
    if outcomes:
        await pool.execute(
            FINISH,
            [o.webhook_id for o in outcomes],
            [o.code for o in outcomes],
            [o.state for o in outcomes],
            [o.wait_s for o in outcomes],
            [o.error for o in outcomes],
        )


async def backlog(pool: asyncpg.Pool) -> dict[str, tuple[int, int, float]]:
    """Per endpoint: pending deliveries, of which retrying, and the oldest one's age."""
    rows = await pool.fetch(BACKLOG)
    return {r["endpoint"]: (r["pending"], r["retrying"], r["oldest_s"]) for r in rows}
