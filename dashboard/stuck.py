"""``/dashboard/api/stuck``: payments waiting on their provider for too long (owner: ops).

Registered or pending (``new``, ``pending``, ``confirmed``) with no news for longer than
``stuck_after_s`` (or ``?older_than_s=``): an operator polls the provider for each, since a
webhook may have been lost. The same query as ``pipeline stuck`` (sinks.pg_schema.STUCK_SQL).
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from litestar import get
from litestar.di import NamedDependency
from litestar.params import Parameter

from dashboard.errors import SourceUnavailable
from sinks.pg_schema import STUCK_SQL


async def stuck_payments(pool: asyncpg.Pool, older_than_s: int, limit: int) -> dict[str, Any]:
    try:
        rows = await pool.fetch(STUCK_SQL, float(older_than_s), limit + 1, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SourceUnavailable(f"postgres: {type(exc).__name__}") from exc
    return {
        "older_than_s": older_than_s,
        "more": len(rows) > limit,
        "payments": [
            {
                "provider": r["provider"],
                "external_id": r["external_id"],
                "status": r["status"],
                "order_id": r["order_id"],
                "amount": r["expected_amount"] or r["amount"],
                "currency": r["currency"],
                "updated_at": int(r["updated_at"].timestamp() * 1000),
                "waiting_s": round(r["waiting_s"]),
            }
            for r in rows[:limit]
        ],
    }


@get("/api/stuck")
async def stuck(
    dash: NamedDependency[Any],
    older_than_s: Annotated[int | None, Parameter(ge=1, le=90 * 86400)] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    wait = dash.stuck_after_s if older_than_s is None else older_than_s
    return await stuck_payments(await dash.pool(), wait, limit)
