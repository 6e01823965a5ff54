"""``/dashboard``: the monitoring page and its JSON API, behind one bearer token.

The token comes from ``[dashboard] token`` in the config file; empty turns the dashboard off
(no routes: 404). The API takes it only as ``Authorization: Bearer <token>``; the page also
takes ``?token=`` so that a browser can open it, and its script sends the token as a header.
Static files (script, style) hold no data and need no token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from litestar import MediaType, Response, Router, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Parameter
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from ingest.dashboard import queries
from ingest.dashboard.lag import LagReader
from ingest.dashboard.stuck import stuck
from ingest.errors import SourceUnavailable
from pipeline.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
PoolGetter = Callable[[State], Awaitable[asyncpg.Pool]]
Minutes = Annotated[int, Parameter(ge=1, le=1440)]
Dash = NamedDependency["Dashboard"]

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


class Dashboard:
    """The dashboard's routes and the clients they share (made lazily, closed on shutdown)."""

    def __init__(self, settings: Settings, pool: PoolGetter) -> None:
        token = settings.dashboard.token.get_secret_value()
        self.enabled = bool(token)
        self._digest = hashlib.sha256(token.encode()).digest()
        self.pool = pool
        self.stuck_after_s = settings.stuck_after_s
        self.ch = queries.ClickHouseReader(settings.clickhouse)
        self.lag = LagReader(settings.kafka.bootstrap)
        t = settings.topics
        self.groups = {
            settings.streams.app_id: (t.raw, t.events),
            "sink-postgres": (t.state, t.transitions),
            "sink-clickhouse": (t.transitions, t.dlq),
        }

    def authorized(self, given: str) -> bool:
        """Constant time: both sides are hashed to the same length before the comparison."""
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._digest)

    def routes(self) -> list[ControllerRouterHandler]:
        if not self.enabled:
            return []
        api = Router(
            path="/dashboard",
            route_handlers=[page, statuses, throughput, latency, lag, dead_letters, stuck],
            guards=[self.guard],
            dependencies={"dash": Provide(lambda: self, sync_to_thread=False)},
            exception_handlers={
                SourceUnavailable: _unavailable,
                NotAuthorizedException: _unauthorized,
            },
            include_in_schema=False,
        )
        static = create_static_files_router(path="/dashboard/static", directories=[STATIC])
        return [api, static]

    def guard(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        scheme, _, given = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            given = connection.query_params.get("token", "") if handler.opt.get("query") else ""
        if not given.strip() or not self.authorized(given.strip()):
            raise NotAuthorizedException(
                detail="dashboard token missing or wrong",
                headers={"WWW-Authenticate": 'Bearer realm="dashboard"'},
            )

    async def close(self) -> None:
        await self.ch.close()
        await self.lag.close()


def _unauthorized(_: Any, exc: NotAuthorizedException) -> Response[dict[str, str]]:
    """JSON, also for the HTML page (whose own media type Litestar would give the error)."""
    return Response(
        {"detail": exc.detail}, status_code=401, headers=exc.headers, media_type=MediaType.JSON
    )


def _unavailable(_: Any, exc: SourceUnavailable) -> Response[dict[str, str]]:
    return Response(
        {"detail": f"data source unavailable: {exc}"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


@get("/", opt={"query": True}, media_type="text/html")
async def page() -> Response[bytes]:
    return Response((STATIC / "index.html").read_bytes(), headers=PAGE_HEADERS)


@get("/api/statuses")
async def statuses(dash: Dash, state: State) -> dict[str, Any]:
    return await queries.statuses(await dash.pool(state))


@get("/api/throughput")
async def throughput(dash: Dash, minutes: Minutes = 60) -> dict[str, Any]:
    return await queries.throughput(dash.ch, minutes)


@get("/api/latency")
async def latency(dash: Dash, minutes: Minutes = 60) -> dict[str, Any]:
    return await queries.latency(dash.ch, minutes)


@get("/api/lag")
async def lag(dash: Dash) -> dict[str, Any]:
    rows = await dash.lag.read(dash.groups)
    totals = {g: sum(r["lag"] for r in rows if r["group"] == g) for g in dash.groups}
    return {"partitions": rows, "total_by_group": totals}


@get("/api/dead-letters")
async def dead_letters(
    dash: Dash, limit: Annotated[int, Parameter(ge=1, le=200)] = 20
) -> dict[str, Any]:
    return await queries.dead_letters(dash.ch, limit)
