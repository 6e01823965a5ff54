"""``/dashboard/api/notifications``: merchant notifications per endpoint (owner: notify).

Delivery success over the window from ClickHouse ``notify_attempts`` (every HTTP attempt of
the notifier), and the retry backlog now from the Postgres outbox (deliveries neither
delivered nor given up, of which those that failed at least once, and the oldest one's age).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import asyncpg
from litestar import get
from litestar.di import NamedDependency
from litestar.params import Parameter

from dashboard.errors import SourceUnavailable

ATTEMPTS_SQL = """SELECT endpoint, count() AS attempts, countIf(result = 'delivered') AS ok,
       countIf(result = 'pending') AS retried, countIf(result = 'dead') AS given_up,
       quantileExact(0.5)(latency_ms), quantileExact(0.99)(latency_ms)
FROM notify_attempts WHERE attempted_at >= now() - INTERVAL {m:UInt32} MINUTE
GROUP BY endpoint ORDER BY endpoint"""

#: the outbox's endpoints are whole URLs; the attempts' are labels without a query string
BACKLOG_SQL = """SELECT endpoint, count(*) AS pending, count(*) FILTER (WHERE attempts > 0)
       AS retrying, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_s
FROM notify_outbox WHERE state = 'pending' GROUP BY endpoint"""


async def backlog(pool: asyncpg.Pool) -> dict[str, dict[str, Any]]:
    try:
        rows = await pool.fetch(BACKLOG_SQL, timeout=5)
    except asyncpg.UndefinedTableError:
        return {}  # no notifier has run yet
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SourceUnavailable(f"postgres: {type(exc).__name__}") from exc
    return {
        _label(r["endpoint"]): {
            "pending": int(r["pending"]),
            "retrying": int(r["retrying"]),
            "oldest_s": round(r["oldest_s"], 1),
        }
        for r in rows
    }


def _label(url: str) -> str:
    """As the notifier labels an endpoint (notify.metrics.label): no query string."""
    u = urlsplit(url)
    return f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}{u.path}"


@get("/api/notifications")
async def notifications(
    dash: NamedDependency[Any], minutes: Annotated[int, Parameter(ge=1, le=1440)] = 60
) -> dict[str, Any]:
    rows = await dash.ch.rows(ATTEMPTS_SQL, {"m": minutes})
    waiting = await backlog(await dash.pool())
    out: dict[str, dict[str, Any]] = {}
    for endpoint, attempts, ok, retried, dead, p50, p99 in rows:
        out[endpoint] = {
            "attempts": int(attempts),
            "delivered": int(ok),
            "retried": int(retried),
            "given_up": int(dead),
            "success": round(int(ok) / int(attempts), 4) if attempts else None,
            "p50_ms": round(float(p50), 1),
            "p99_ms": round(float(p99), 1),
        }
    for endpoint in waiting:
        out.setdefault(endpoint, {"attempts": 0, "delivered": 0, "retried": 0, "given_up": 0,
                                  "success": None, "p50_ms": None, "p99_ms": None})  # fmt: skip
    empty = {"pending": 0, "retrying": 0, "oldest_s": 0.0}
    return {
        "minutes": minutes,
        "endpoints": [
            {"endpoint": e, **v, "backlog": waiting.get(e, empty)} for e, v in sorted(out.items())
        ],
    }
