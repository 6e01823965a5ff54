"""The demo shop of ``make run``: a small HTTP receiver at the first ``[[notify.endpoints]]``
URL on this machine, verifying each notification with the official ``standardwebhooks``
library, as a merchant's platform would. ``make run`` counts what it received for its burst.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import orjson
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from pipeline.settings import NotifyEndpoint, Settings

#: the transitions of the burst that the endpoint wants: one notification each
EXPECTED = """
SELECT count(*) FROM transaction_events
WHERE external_id = ANY($1::text[]) AND from_status <> to_status
  AND (to_status = ANY($2::text[]) OR $3)
"""


@dataclass
class Shop:
    endpoint: NotifyEndpoint
    got: dict[str, dict[str, object]] = field(default_factory=dict)  # webhook-id -> body
    at: dict[str, float] = field(default_factory=dict)  # webhook-id -> receipt (epoch s)
    refused: int = 0
    repeats: int = 0
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            for secret in self.endpoint.secrets:
                Webhook(secret.get_secret_value()).verify(body, dict(request.headers))
        except Exception:
            self.refused += 1
            return web.Response(status=400)
        wid = request.headers["webhook-id"]
        self.repeats += wid in self.got
        self.got.setdefault(wid, orjson.loads(body))
        self.at.setdefault(wid, time.time())
        return web.Response(status=204)

    async def start(self) -> str | None:
        """Listen at the endpoint's address; why not, if it cannot."""
        u = urlsplit(self.endpoint.url)
        app = web.Application()
        app.router.add_post(u.path or "/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, u.hostname, u.port or 80).start()
        except OSError as exc:
            await self.stop()
            return f"cannot listen at {u.hostname}:{u.port}: {exc.strerror}"
        return None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def of(self, ids: set[str]) -> dict[str, dict[str, object]]:
        return {w: d for w, d in self.got.items() if _data(d).get("external_id") in ids}


def _data(doc: dict[str, object]) -> dict[str, object]:
    data = doc.get("data")
    return data if isinstance(data, dict) else {}


def local_endpoint(settings: Settings) -> NotifyEndpoint | None:
    """The first configured endpoint on this machine: the demo shop's."""
    for e in settings.notify.endpoints:
        if urlsplit(e.url).hostname in ("127.0.0.1", "localhost"):
            return e
    return None


async def expected(dsn: str, endpoint: NotifyEndpoint, ids: list[str]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        n = await conn.fetchval(EXPECTED, ids, endpoint.statuses or [], endpoint.statuses is None)
    finally:
        await conn.close()
    return int(n)


async def wait_for(shop: Shop, ids: set[str], want: int, timeout: float) -> float:
    """Seconds until the shop holds ``want`` notifications of these payments (or timeout)."""
    t0 = time.monotonic()
    while len(shop.of(ids)) < want and time.monotonic() - t0 < timeout:
        await asyncio.sleep(0.1)
    return time.monotonic() - t0


async def delivery_lags(dsn: str, shop: Shop, ids: set[str]) -> list[float]:
    """Per notification: from its transition's publication to the shop's receipt, seconds."""
    wids = list(shop.of(ids))
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT webhook_id, extract(epoch FROM transition_at)::float8 AS t "
            "FROM notify_outbox WHERE webhook_id = ANY($1::text[])",
            wids,
        )
    finally:
        await conn.close()
    return sorted(shop.at[r["webhook_id"]] - r["t"] for r in rows if r["t"] is not None)


async def open_shop(settings: Settings, say: Callable[[str], None]) -> Shop | None:
    """The demo shop listening, or None (said why) when no local endpoint is configured or
    its port is taken (another stack's demo, perhaps)."""
    endpoint = local_endpoint(settings)
    if endpoint is None:
        say("No [[notify.endpoints]] on 127.0.0.1: the demo shop stays closed")
        return None
    shop = Shop(endpoint)
    if why := await shop.start():
        say(f"The demo shop stays closed ({why}): notifications are not counted")
        return None
    say(f"The demo shop listens at {endpoint.url} for its signed notifications")
    return shop


async def report(
    shop: Shop | None, dsn: str, ids: list[str], say: Callable[[str], None], timeout: float
) -> bool:
    """Wait for the burst's notifications and say what the shop received; whether all came."""
    if shop is None:
        return True
    try:
        want = await expected(dsn, shop.endpoint, ids)
        waited = await wait_for(shop, set(ids), want, timeout)
        got = shop.of(set(ids))
        lags = await delivery_lags(dsn, shop, set(ids))
    finally:
        await shop.stop()
    p50 = lags[len(lags) // 2] * 1000 if lags else float("nan")
    p99 = lags[min(len(lags) - 1, len(lags) * 99 // 100)] * 1000 if lags else float("nan")
    statuses = Counter(str(_data(d).get("status")) for d in got.values())
    say(
        f"Demo shop: {len(got)}/{want} notifications received and verified (standardwebhooks) "
        f"{waited:.2f} s after the drain, {shop.refused} refused, {shop.repeats} repeats; "
        f"by status {dict(sorted(statuses.items()))}; transition -> shop p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms"
    )
    return len(got) == want and shop.refused == 0
