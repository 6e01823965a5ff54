"""Read side for ``GET /transactions``: the Postgres row the sinks wrote, with its history."""

from __future__ import annotations

from typing import Any

import asyncpg

ROW = """SELECT provider, external_id, status, amount::text AS amount, currency, order_id,
       version, late, updated_at, expected_amount::text AS expected_amount
FROM transactions WHERE provider = $1 AND external_id = $2"""

HISTORY = """SELECT event_id, status, effective_status, applied, note, provider_status,
       amount::text AS amount, currency, occurred_at, received_at
FROM transaction_events WHERE provider = $1 AND external_id = $2
ORDER BY occurred_at, event_id"""


async def fetch_transaction(
    pool: asyncpg.Pool, provider: str, external_id: str
) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(ROW, provider, external_id)
        if row is None:
            return None
        events = await conn.fetch(HISTORY, provider, external_id)
    out = dict(row)
    out["events"] = [dict(e) for e in events]
    return out
