"""Ingest holds only what receiving needs (issue 17 item 3, decision 0070): no dashboard
route, no ClickHouse client, no Kafka admin client; the merchant API's contract routes stay."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from ingest.app import create_app
from ingest.writer import MemoryWriter
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, MemoryWriter())) as c:
        yield c


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard",
        "/dashboard/",
        "/dashboard/login",
        "/dashboard/api/statuses",
        "/dashboard/api/lag",
        "/dashboard/static/charts.js",
    ],
)
def test_the_dashboard_is_not_on_ingest(client: TestClient, settings: Settings, path: str) -> None:
    token = settings.dashboard.token.get_secret_value()
    r = client.get(path, headers={"authorization": f"Bearer {token}"}, follow_redirects=False)
    assert r.status_code == 404, (path, r.status_code)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["detail"]
    login = client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
    assert login.status_code in (404, 405) and "set-cookie" not in login.headers


def test_the_merchant_api_contract_routes_stay(client: TestClient, settings: Settings) -> None:
    paths = {route.path for route in client.app.routes}
    assert {
        "/webhooks/{provider:str}",
        "/checkouts",
        "/transactions/{provider:str}/{external_id:str}",
        "/transactions",
        "/health",
        "/ready",
    } <= paths
    assert not [p for p in paths if p.startswith("/dashboard")], paths
    r = client.get("/transactions/btcpay/x")  # guarded before it reads anything: no database
    assert r.status_code == 401 and r.json()["detail"]


def test_ingest_loads_no_clickhouse_or_kafka_admin_client() -> None:
    """Building and serving the app imports neither client library: ingest cannot make one."""
    code = """
import sys
from litestar.testing import TestClient
from ingest.app import create_app
from ingest.writer import MemoryWriter
from tests.explicit_settings import unit_settings
with TestClient(create_app(unit_settings(), MemoryWriter())) as c:
    assert c.get("/health").status_code == 200
loaded = sorted(m for m in sys.modules if m.startswith(("clickhouse_connect", "aiokafka.admin",
                                                        "dashboard")))
print(",".join(loaded))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", done.stdout
