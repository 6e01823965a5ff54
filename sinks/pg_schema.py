"""Postgres schema migrations: numbered, applied once each, safe to run again and again."""

from __future__ import annotations

import asyncpg

MIGRATIONS: list[str] = [
    # 1: current state, one row per payment; version only grows
    """
    CREATE TABLE IF NOT EXISTS transactions (
        provider          text        NOT NULL,
        external_id       text        NOT NULL,
        status            text        NOT NULL,
        amount            numeric,
        currency          text,
        order_id          text,
        expected_amount   numeric,
        expected_currency text,
        late              boolean     NOT NULL DEFAULT false,
        version           bigint      NOT NULL,
        updated_at        timestamptz NOT NULL,
        written_at        timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (provider, external_id)
    );
    CREATE INDEX IF NOT EXISTS transactions_status ON transactions (status);
    CREATE TABLE IF NOT EXISTS transaction_events (
        event_id         text        PRIMARY KEY,
        provider         text        NOT NULL,
        external_id      text        NOT NULL,
        status           text        NOT NULL,
        effective_status text        NOT NULL,
        applied          boolean     NOT NULL,
        note             text        NOT NULL DEFAULT '',
        provider_status  text        NOT NULL,
        amount           numeric,
        currency         text,
        occurred_at      timestamptz NOT NULL,
        received_at      timestamptz,
        version          bigint      NOT NULL
    );
    CREATE INDEX IF NOT EXISTS transaction_events_tx ON transaction_events (provider, external_id);
    CREATE TABLE IF NOT EXISTS checkouts (
        provider    text        NOT NULL,
        external_id text        NOT NULL,
        order_id    text        NOT NULL,
        amount      numeric     NOT NULL,
        currency    text        NOT NULL,
        created_at  timestamptz NOT NULL,
        PRIMARY KEY (provider, external_id)
    );
    """,
    # 2: history rows come from transitions: the transition as first applied, and the
    # provider's human reference where it has one (Coinbase: the charge code)
    """
    ALTER TABLE transaction_events ADD COLUMN IF NOT EXISTS from_status text,
        ADD COLUMN IF NOT EXISTS to_status text, ADD COLUMN IF NOT EXISTS reference text;
    CREATE INDEX IF NOT EXISTS transaction_events_reference
        ON transaction_events (provider, reference) WHERE reference IS NOT NULL;
    CREATE INDEX IF NOT EXISTS transactions_waiting
        ON transactions (updated_at) WHERE status IN ('new', 'pending', 'confirmed');
    """,
]


async def migrate(conn: asyncpg.Connection) -> int:
    """Apply what is missing under an advisory lock; returns how many migrations ran."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(724011)")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        ran = 0
        for number, sql in enumerate(MIGRATIONS, start=1):
            if number in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", number)
            ran += 1
        return ran


#: stuck payments: waiting on the provider (registered, ``pending``, ``confirmed``) with no
#: news for longer than $1 seconds, oldest
#: first (``updated_at`` is the newest receipt of the payment's events or registration)
STUCK_SQL = """SELECT provider, external_id, status, order_id, amount::text AS amount, currency,
       expected_amount::text AS expected_amount, updated_at,
       extract(epoch FROM now() - updated_at)::float8 AS waiting_s
FROM transactions
WHERE status IN ('new', 'pending', 'confirmed') AND updated_at < now() - make_interval(secs => $1)
ORDER BY updated_at LIMIT $2"""
