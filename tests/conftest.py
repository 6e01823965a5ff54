"""Session fixtures: the real stack (Kafka, Postgres, ClickHouse, ingest, streams, sinks),
started once by the same launcher as ``make up``, in a fresh run folder, and only when a test
asks for it (tests/integration, tests/chaos): unit tests need nothing running."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import clickhouse_connect
import httpx
import pytest

from pipeline.settings import Settings, load_settings
from stack import launcher
from tests.auth import MerchantAuth, api_token

#: PIPELINE_TEST_RUN_DIR lets two suites run side by side, each with its own stack
RUN_DIR = Path(
    os.environ.get("PIPELINE_TEST_RUN_DIR", Path(__file__).resolve().parents[1] / ".run" / "test")
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if "tests/integration" in path:
            item.add_marker(pytest.mark.integration)
        if "tests/chaos" in path:
            item.add_marker(pytest.mark.chaos)


#: the session's clients drop an idle connection after 2 s, before uvicorn closes it after 5
#: (its keep-alive timeout): at equal timeouts a request could go out on a connection the
#: server was closing at that moment (httpx.ReadError, seen once in CI)
KEEP_ALIVE = httpx.Limits(keepalive_expiry=2.0)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[launcher.StackInfo]:
    launcher.down(RUN_DIR)
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    info = launcher.up(RUN_DIR, settings)
    try:
        yield info
    finally:
        launcher.down(RUN_DIR)


@pytest.fixture(scope="session")
async def pg(stack: launcher.StackInfo) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(stack.postgres_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def ch(stack: launcher.StackInfo) -> clickhouse_connect.driver.Client:
    return clickhouse_connect.get_client(dsn=stack.clickhouse_url)


@pytest.fixture(scope="session")
async def api(stack: launcher.StackInfo, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest's client; merchant API calls carry the configured API token (tests/auth.py)."""
    auth = MerchantAuth(api_token(settings))
    async with httpx.AsyncClient(
        base_url=stack.ingest_url, timeout=10, auth=auth, limits=KEEP_ALIVE
    ) as client:
        yield client


@pytest.fixture(scope="session")
async def dash(stack: launcher.StackInfo) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard part's client (its own process and port, DASHBOARD_URL); no credential:
    each test sends the one it means."""
    async with httpx.AsyncClient(
        base_url=stack.dashboard_url, timeout=10, limits=KEEP_ALIVE
    ) as client:
        yield client
