"""Every HTTP attempt, as a row of ClickHouse ``notify_attempts``: buffered, written once a
second. The log is for people (the dashboard, analysts); the outbox is the truth. While
ClickHouse is unreachable rows wait in memory, up to a bound past which the oldest go."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect import get_async_client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sinks.ch_schema import NOTIFY_ATTEMPTS

log = logging.getLogger("notify")

COLUMNS = [
    "attempted_at", "endpoint", "webhook_id", "provider", "external_id", "version", "status",
    "attempt", "status_code", "latency_ms", "result", "error",
]  # fmt: skip


class AttemptLog:
    def __init__(self, url: str, database: str, username: str, password: str, bound: int = 100_000):
        self._conn: dict[str, Any] = {
            "dsn": url,
            "database": database,
            "username": username,
            "password": password,
        }
        self._rows: deque[list[Any]] = deque(maxlen=bound)
        self._client: Any = None
        self._down = False

    def add(
        self, endpoint: str, webhook_id: str, provider: str, external_id: str, version: int,
        status: str, attempt: int, code: int | None, seconds: float, result: str, error: str | None,
    ) -> None:  # fmt: skip
        self._rows.append([
            datetime.now(UTC), endpoint, webhook_id, provider, external_id, version, status,
            attempt, code or 0, round(seconds * 1000, 3), result, error or "",
        ])  # fmt: skip

    async def run(self, stop: asyncio.Event, every_s: float = 1.0) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
            await self.flush()

    async def flush(self) -> None:
        if not self._rows:
            return
        rows = list(self._rows)
        try:
            if self._client is None:
                self._client = await get_async_client(**self._conn)
                await self._client.command(NOTIFY_ATTEMPTS)
            await self._client.insert("notify_attempts", rows, column_names=COLUMNS)
        except (ClickHouseError, OSError) as exc:
            if not self._down:
                log.warning("notify: ClickHouse unreachable, attempts wait in memory: %s", exc)
            self._down, self._client = True, None
            return
        if self._down:
            log.warning("notify: ClickHouse back, attempts written")
        self._down = False
        for _ in rows:
            self._rows.popleft()
