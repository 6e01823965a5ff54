"""The dashboard's HTTP app, built by ``create_app(settings)``; nothing connects at import time.

Its own process (``dashboard.main``), apart from ingest: its page and read API are served here
and nowhere else, so that a heavy dashboard query never waits in the event loop that answers
the providers' webhooks (docs/decisions/0070).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from litestar import Litestar, Response, get

from dashboard.routes import Dashboard
from pipeline.settings import Settings

log = structlog.get_logger("dashboard")

#: the largest request body: the login form's token is the only body the dashboard reads
MAX_BODY_BYTES = 16 * 1024


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "alive"}


@get("/", include_in_schema=False)
async def home() -> Response[bytes]:
    return Response(b"", status_code=303, headers={"Location": "/dashboard/"})


def create_app(settings: Settings) -> Litestar:
    """The page, its API and ``/health``; the data sources' clients close on shutdown."""
    dashboard = Dashboard(settings)
    if not dashboard.enabled:
        log.warning("no [api] tokens and no [dashboard] token: the dashboard is off (404)")

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await dashboard.close()

    return Litestar(
        route_handlers=[health, home, *dashboard.routes()],
        lifespan=[lifespan],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=None,
        debug=False,
    )
