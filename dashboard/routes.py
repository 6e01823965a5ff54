"""``/dashboard``: the monitoring page and its JSON API, behind the merchant API's tokens.

Accepted: any of ``[api] tokens`` and the optional read-only ``[dashboard] token``; none at all
turns the dashboard off (no routes: 404). The API and the page take a token as
``Authorization: Bearer <token>`` or the session cookie that the login form
(``/dashboard/login``) sets: HttpOnly, SameSite=Strict, holding an HMAC, never the token
(``session.py``). Never from the address: a token in a URL ends up in histories and logs.
The page without a credential redirects to the login form; the API answers 401 JSON.
Static files (script, style) hold no data and need no token.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from litestar import MediaType, Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Parameter
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from dashboard import queries, session
from dashboard.errors import SourceUnavailable
from dashboard.lag import LagReader
from dashboard.notify import notifications
from dashboard.stuck import stuck
from ingest.auth import Tokens, bearer, refuse
from pipeline.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
Minutes = Annotated[int, Parameter(ge=1, le=1440)]
Dash = NamedDependency["Dashboard"]

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}


class Dashboard:
    """The dashboard's routes and the clients they share (made lazily, closed on shutdown):
    a Postgres pool, a ClickHouse client, a Kafka admin client and consumer for the lag."""

    def __init__(self, settings: Settings) -> None:
        api_tokens = Tokens(t.get_secret_value() for t in settings.api.tokens)
        self.tokens = api_tokens + Tokens([settings.dashboard.token.get_secret_value()])
        self.enabled = bool(self.tokens)
        self.cookie_secure = settings.dashboard.cookie_secure
        self.session_hours = settings.dashboard.session_hours
        self.stuck_after_s = settings.stuck_after_s
        self._pg_dsn = settings.postgres.dsn.get_secret_value()
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self.ch = queries.ClickHouseReader(settings.clickhouse)
        self.lag = LagReader(settings.kafka.bootstrap)
        t = settings.topics
        self.groups = {
            settings.streams.app_id: (t.raw,),
            "sink-postgres": (t.state, t.transitions),
            "sink-clickhouse": (t.transitions, t.dlq),
        }

    def authorized(self, connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        """A bearer header with an accepted token, or a valid session cookie."""
        given = bearer(connection.headers.get("authorization", ""))
        if given:
            return self.tokens.match(given) is not None
        return session.valid(self.tokens, connection.cookies.get(session.COOKIE, ""))

    def routes(self) -> list[ControllerRouterHandler]:
        if not self.enabled:
            return []
        api = Router(
            path="/dashboard",
            route_handlers=[
                page,
                login_form,
                login,
                logout,
                statuses,
                throughput,
                latency,
                lag,
                dead_letters,
                stuck,
                notifications,
            ],
            guards=[self.guard],
            dependencies={"dash": Provide(lambda: self, sync_to_thread=False)},
            exception_handlers={
                LoginRequired: _to_login,
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
        if handler.opt.get("public") or self.authorized(connection):
            return
        if handler.opt.get("page"):
            raise LoginRequired()
        raise refuse("dashboard token missing or wrong", 'Bearer realm="dashboard"')

    async def pool(self) -> asyncpg.Pool:
        """The Postgres pool, made on first use; a failure to make it is a 503 and the next
        call tries again."""
        async with self._pool_lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self._pg_dsn, min_size=1, max_size=4, timeout=5
                    )
                except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                    raise SourceUnavailable(f"postgres: {type(exc).__name__}") from exc
            return self._pool

    async def close(self) -> None:
        await self.ch.close()
        await self.lag.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


class LoginRequired(Exception):
    """The page was asked for without a credential: the browser goes to the login form."""


def _to_login(_: Any, __: LoginRequired) -> Response[bytes]:
    return Response(b"", status_code=303, headers={**PAGE_HEADERS, "Location": "/dashboard/login"})


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


@get("/", opt={"page": True}, media_type="text/html")
async def page() -> Response[bytes]:
    return Response((STATIC / "index.html").read_bytes(), headers=PAGE_HEADERS)


def _login_page(status: int, error: str = "") -> Response[bytes]:
    html = (STATIC / "login.html").read_bytes().replace(b"<!--error-->", error.encode())
    return Response(html, status_code=status, media_type="text/html", headers=PAGE_HEADERS)


@get("/login", opt={"public": True}, media_type="text/html")
async def login_form() -> Response[bytes]:
    return _login_page(200)


@post("/login", opt={"public": True}, media_type="text/html", status_code=303)
async def login(dash: Dash, request: Request[Any, Any, Any]) -> Response[bytes]:
    """A form post of ``token``: a valid one gets the session cookie and goes to the page."""
    form = await request.form() if _is_form(request) else {}
    given = form.get("token", "")
    key = dash.tokens.match(given.strip()) if isinstance(given, str) and given.strip() else None
    if key is None:
        return _login_page(401, "Wrong token.")
    value, max_age = session.issue(key, dash.session_hours)
    cookie = session.set_cookie_header(value, max_age, dash.cookie_secure)
    headers = {**PAGE_HEADERS, "Location": "/dashboard/", "Set-Cookie": cookie}
    return Response(b"", status_code=303, headers=headers)


@post("/logout", opt={"public": True}, media_type="text/html", status_code=303)
async def logout(dash: Dash) -> Response[bytes]:
    cookie = session.clear_cookie_header(dash.cookie_secure)
    headers = {**PAGE_HEADERS, "Location": "/dashboard/login", "Set-Cookie": cookie}
    return Response(b"", status_code=303, headers=headers)


def _is_form(request: Request[Any, Any, Any]) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/x-www-form-urlencoded"


@get("/api/statuses")
async def statuses(dash: Dash) -> dict[str, Any]:
    return await queries.statuses(await dash.pool())


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
