"""What the dashboard shows, read from Postgres (current state) and ClickHouse (history).

Each function answers plain JSON-ready dicts; times are epoch milliseconds (UTC).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from clickhouse_connect import get_async_client
from clickhouse_connect.driver.exceptions import ClickHouseError

from dashboard.errors import SourceUnavailable
from domain.model import Status
from pipeline.settings import ClickHouseSettings

STATUS_ORDER = tuple(s.value for s in Status)

STATUSES_SQL = "SELECT status, count(*) AS n FROM transactions GROUP BY status"

# distinct events per minute of processing: each event's first delivery (a redelivery's outcome
# is "duplicate"); events_per_minute is on the events' own (provider) time, for analysts
EVENTS_SQL = """SELECT toStartOfMinute(processed_at) AS minute, uniqExact(event_id)
FROM ingest_log WHERE processed_at >= now() - INTERVAL {m:UInt32} MINUTE
AND outcome IN ('applied', 'refused') GROUP BY minute ORDER BY minute"""

DELIVERIES_SQL = """SELECT toStartOfMinute(received_at) AS minute, uniqExact(delivery_id)
FROM ingest_log WHERE received_at >= now() - INTERVAL {m:UInt32} MINUTE
GROUP BY minute ORDER BY minute"""

# exact percentiles (whole ms) over distinct deliveries: sinks/ch_schema.py
_LATENCY = """SELECT {key} quantilesExactWeighted(0.5, 0.9, 0.99)(latency_ms, n), sum(n)
FROM (SELECT minute, latency_ms, uniqExactMerge(deliveries) AS n FROM latency_per_minute_state
      WHERE minute >= now() - INTERVAL {{m:UInt32}} MINUTE GROUP BY minute, latency_ms)"""
LATENCY_SQL = _LATENCY.format(key="minute,") + " GROUP BY minute ORDER BY minute"
LATENCY_WINDOW_SQL = _LATENCY.format(key="")

DEAD_BY_STAGE_SQL = "SELECT stage, count() FROM dead_letters FINAL GROUP BY stage ORDER BY stage"

DEAD_RECENT_SQL = """SELECT id, stage, provider, substring(reason, 1, 300), failed_at,
       source_topic, source_partition, source_offset
FROM dead_letters FINAL ORDER BY failed_at DESC LIMIT {n:UInt32}"""


def _ms(t: datetime) -> int:
    return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * 1000)


async def statuses(pool: asyncpg.Pool) -> dict[str, Any]:
    """Transactions by current status, in the state machine's order."""
    try:
        rows = await pool.fetch(STATUSES_SQL, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise SourceUnavailable(f"postgres: {type(exc).__name__}") from exc
    counts = {r["status"]: int(r["n"]) for r in rows}
    known = [s for s in STATUS_ORDER if s in counts]
    order = known + sorted(set(counts) - set(known))
    return {
        "total": sum(counts.values()),
        "by_status": [{"status": s, "count": counts[s]} for s in order],
    }


class ClickHouseReader:
    """One lazily made async client; any failure drops it, the next call connects again."""

    def __init__(self, cfg: ClickHouseSettings, timeout_s: float = 5.0) -> None:
        self._cfg, self._timeout_s = cfg, timeout_s
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def rows(self, sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        try:
            async with asyncio.timeout(self._timeout_s):
                client = await self._connect()
                result = await client.query(sql, parameters=params)
        except (ClickHouseError, OSError, TimeoutError) as exc:
            await self.close()
            raise SourceUnavailable(f"clickhouse: {type(exc).__name__}") from exc
        rows: Sequence[Sequence[Any]] = result.result_rows
        return rows

    async def _connect(self) -> Any:
        async with self._lock:
            if self._client is None:
                c = self._cfg
                self._client = await get_async_client(
                    dsn=c.url,
                    database=c.database,
                    username=c.username,
                    password=c.password.get_secret_value(),
                )
            return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


async def throughput(ch: ClickHouseReader, minutes: int) -> dict[str, Any]:
    """Distinct events per minute (``events_per_minute``) and deliveries received per minute
    (``ingest_log``, duplicates included), over the last ``minutes``."""
    events = await ch.rows(EVENTS_SQL, {"m": minutes})
    deliveries = await ch.rows(DELIVERIES_SQL, {"m": minutes})
    return {
        "minutes": minutes,
        "events": [[_ms(t), int(n)] for t, n in events],
        "deliveries": [[_ms(t), int(n)] for t, n in deliveries],
    }


async def latency(ch: ClickHouseReader, minutes: int) -> dict[str, Any]:
    """Receipt-to-processed latency percentiles (ms) per minute and over the whole window."""
    per_minute = await ch.rows(LATENCY_SQL, {"m": minutes})
    (window_q, window_n), *_ = await ch.rows(LATENCY_WINDOW_SQL, {"m": minutes})
    return {
        "minutes": minutes,
        "points": [
            {"t": _ms(t), "p50": q[0], "p90": q[1], "p99": q[2], "deliveries": int(n)}
            for t, q, n in per_minute
        ],
        "window": {
            "p50": window_q[0] if window_n else None,
            "p90": window_q[1] if window_n else None,
            "p99": window_q[2] if window_n else None,
            "deliveries": int(window_n),
        },
    }


async def dead_letters(ch: ClickHouseReader, limit: int) -> dict[str, Any]:
    """Dead-letter count by stage and the newest ones with their reasons."""
    by_stage = await ch.rows(DEAD_BY_STAGE_SQL, {})
    recent = await ch.rows(DEAD_RECENT_SQL, {"n": limit})
    return {
        "total": sum(int(n) for _, n in by_stage),
        "by_stage": [{"stage": s, "count": int(n)} for s, n in by_stage],
        "recent": [
            {
                "id": i,
                "stage": stage,
                "provider": provider,
                "reason": reason,
                "failed_at": _ms(at),
                "source": f"{topic}:{part}:{offset}",
            }
            for i, stage, provider, reason, at, topic, part, offset in recent
        ],
    }
