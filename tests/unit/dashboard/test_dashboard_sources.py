"""The dashboard app around its routes: health, the way in, a bounded body, the page's
security headers, and a JSON 503 with Retry-After for each data source that does not answer
(real connection attempts to closed ports: Postgres, ClickHouse, Kafka)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from pydantic import SecretStr

from dashboard.app import MAX_BODY_BYTES, create_app
from pipeline.settings import ClickHouseSettings, KafkaSettings, PostgresSettings, Settings
from tests.explicit_settings import DASHBOARD_TOKEN, unit_settings

AUTH = {"authorization": f"Bearer {DASHBOARD_TOKEN}"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def nothing_up() -> Settings:
    """Every data source on a port nothing listens on."""
    return unit_settings(
        postgres=PostgresSettings(
            dsn=SecretStr(f"postgresql://pipeline@127.0.0.1:{closed_port()}/pipeline")
        ),
        clickhouse=ClickHouseSettings(url=f"http://127.0.0.1:{closed_port()}"),
        kafka=KafkaSettings(bootstrap=f"127.0.0.1:{closed_port()}"),
    )


@pytest.fixture
def client(nothing_up: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(nothing_up)) as c:
        yield c


def test_health_and_the_way_in(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "alive"}
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/dashboard/"
    missing = client.get("/schema/openapi.json")  # no API document: nothing to publish
    assert missing.status_code == 404 and missing.json()["detail"]


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("/dashboard/api/statuses", "postgres"),
        ("/dashboard/api/stuck", "postgres"),
        ("/dashboard/api/throughput", "clickhouse"),
        ("/dashboard/api/latency", "clickhouse"),
        ("/dashboard/api/dead-letters", "clickhouse"),
        ("/dashboard/api/notifications", "clickhouse"),
        ("/dashboard/api/lag", "kafka"),
    ],
)
def test_a_source_that_does_not_answer_is_503_json_with_retry_after(
    client: TestClient, path: str, source: str
) -> None:
    for _ in range(2):  # the failed client is dropped; the next call tries again, same answer
        r = client.get(path, headers=AUTH)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        assert r.json()["detail"].startswith(f"data source unavailable: {source}: "), r.text


def test_the_login_body_is_bounded(client: TestClient) -> None:
    big = "x" * (MAX_BODY_BYTES + 1)
    r = client.post("/dashboard/login", data={"token": big}, follow_redirects=False)
    assert r.status_code == 413 and r.json()["detail"]
    assert "set-cookie" not in r.headers


def test_page_and_login_form_send_the_security_headers(client: TestClient) -> None:
    page = client.get("/dashboard/", headers=AUTH)
    form = client.get("/dashboard/login")
    for r in (page, form):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert 'action="/dashboard/login"' in form.text


def test_a_wrong_token_is_refused_in_json(client: TestClient) -> None:
    """(was tests/unit/ingest/test_hostile_requests.py, before the dashboard left ingest)"""
    r = client.get("/dashboard/api/lag", headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["detail"] == "dashboard token missing or wrong"
    assert r.headers["www-authenticate"] == 'Bearer realm="dashboard"'
