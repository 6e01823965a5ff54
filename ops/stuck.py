"""Stuck payments: registered or pending for longer than a limit without a terminal status.

An operator polls the provider for each (a webhook may have been lost on the provider's
side); the old backend's cron existed for this. The limit is ``stuck_after_s`` in the config.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ops.errors import OpsError
from sinks.pg_schema import STUCK_SQL


async def stuck(dsn: str, older_than_s: float, limit: int = 1000) -> list[dict[str, Any]]:
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise OpsError(f"Postgres unreachable: {type(exc).__name__}") from None
    try:
        rows = await conn.fetch(STUCK_SQL, older_than_s, limit)
    finally:
        await conn.close()
    return [dict(r) for r in rows]
