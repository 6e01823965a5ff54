"""Read side for ``GET /transactions``: the Postgres row the sinks wrote, with its history."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

#: the normalizers refuse longer ids (domain/providers/_json.py), so none is ever stored
MAX_ID_CHARS = 512
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

ROW = """SELECT provider, external_id, status, amount::text AS amount, currency, order_id,
       version, late, updated_at, expected_amount::text AS expected_amount
FROM transactions WHERE provider = $1 AND external_id = $2"""

HISTORY = """SELECT event_id, status, effective_status, applied, note, provider_status,
       amount::text AS amount, currency, occurred_at, received_at
FROM transaction_events WHERE provider = $1 AND external_id = $2
ORDER BY occurred_at, event_id"""

#: history rows carry the provider's human reference (Coinbase: the charge code), if any
BY_REFERENCE = """SELECT external_id FROM transaction_events
WHERE provider = $1 AND reference = $2 ORDER BY version LIMIT 1"""

_DOWN = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


class TransactionsUnavailable(Exception):
    """Postgres did not answer: the caller should retry later (503)."""


def storable(external_id: str) -> bool:
    """Could a payment have this id? Not with NUL (Postgres text cannot hold it), a lone
    surrogate (not encodable as UTF-8), or more characters than a normalizer accepts."""
    return len(external_id) <= MAX_ID_CHARS and not _UNSTORABLE.search(external_id)


async def fetch_transaction(
    pool: asyncpg.Pool, provider: str, external_id: str
) -> dict[str, Any] | None:
    try:
        async with pool.acquire(timeout=5) as conn:
            row = await conn.fetchrow(ROW, provider, external_id, timeout=5)
            if row is None:
                return None
            events = await conn.fetch(HISTORY, provider, external_id, timeout=5)
    except _DOWN as exc:
        raise TransactionsUnavailable(type(exc).__name__) from exc
    out = dict(row)
    out["events"] = [dict(e) for e in events]
    return out


async def find_by_reference(
    pool: asyncpg.Pool, provider: str, reference: str
) -> dict[str, Any] | None:
    try:
        external_id = await pool.fetchval(BY_REFERENCE, provider, reference, timeout=5)
    except _DOWN as exc:
        raise TransactionsUnavailable(type(exc).__name__) from exc
    return None if external_id is None else await fetch_transaction(pool, provider, external_id)
