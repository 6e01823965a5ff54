"""The dashboard's access rules and lag arithmetic, and ingest's /metrics, without any service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiokafka import TopicPartition
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from ingest.app import create_app
from ingest.dashboard.lag import lag_rows
from ingest.writer import MemoryWriter
from pipeline.settings import DashboardSettings, Settings, load_settings
from pipeline.webhook_factory import SampleEvent, signed_request

TOKEN = "unit-test-dashboard-token"


def with_token(token: str) -> Settings:
    return load_settings().model_copy(
        update={"dashboard": DashboardSettings(token=SecretStr(token))}
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(with_token(TOKEN), MemoryWriter())) as c:
        yield c


def test_an_empty_token_turns_the_dashboard_off() -> None:
    with TestClient(create_app(with_token(""), MemoryWriter())) as c:
        for path in ("/dashboard", "/dashboard/api/statuses", "/dashboard/static/charts.js"):
            assert c.get(path, headers={"Authorization": "Bearer "}).status_code == 404, path


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}, {"Authorization": "Bearer"}],
)
def test_no_or_wrong_token_is_401_json(client: TestClient, headers: dict[str, str]) -> None:
    for path in ("/dashboard", "/dashboard/api/lag", "/dashboard/api/dead-letters"):
        r = client.get(path, headers=headers)
        assert r.status_code == 401
        assert r.json()["detail"] == "dashboard token missing or wrong"


def test_page_opens_with_the_query_token_the_api_does_not(client: TestClient) -> None:
    page = client.get("/dashboard", params={"token": TOKEN})
    assert page.status_code == 200 and "<svg" not in page.text and "charts.js" in page.text
    assert client.get("/dashboard", params={"token": TOKEN + "x"}).status_code == 401
    assert client.get("/dashboard/api/statuses", params={"token": TOKEN}).status_code == 401
    assert client.get("/dashboard/static/dashboard.js").status_code == 200


def test_lag_rows_count_uncommitted_partitions_whole() -> None:
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    rows = lag_rows("g", ["a"], {a0: 7}, {a0: 10, a1: 4, b0: 99})
    assert rows == [
        {"group": "g", "topic": "a", "partition": 0, "committed": 7, "end": 10, "lag": 3},
        {"group": "g", "topic": "a", "partition": 1, "committed": None, "end": 4, "lag": 4},
    ]
    assert lag_rows("g", ["a"], {a0: -1}, {a0: 2})[0]["lag"] == 2


def test_metrics_count_a_webhook_by_provider_code_and_size(client: TestClient) -> None:
    def sample(text: str, name: str, **labels: str) -> float:
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == name and labels.items() <= s.labels.items()
        )

    before = client.get("/metrics").text
    ev = SampleEvent(
        "btcpay", "p-1", "pending", Decimal("1.5"), "BTC", datetime.now(UTC), "e-1", "o-1"
    )
    body, headers = signed_request(ev, load_settings().providers, time.time())
    assert client.post("/webhooks/btcpay", content=body, headers=headers).status_code == 202
    headers["btcpay-sig"] = "sha256=" + "0" * 64
    assert client.post("/webhooks/btcpay", content=body, headers=headers).status_code == 401
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    requests = "pipeline_ingest_requests_total"
    for code in ("202", "401"):
        got = sample(after.text, requests, provider="btcpay", code=code)
        assert got - sample(before, requests, provider="btcpay", code=code) == 1
    failures = "pipeline_ingest_verification_failures_total"
    got = sample(after.text, failures, provider="btcpay", reason="bad signature")
    assert got - sample(before, failures, provider="btcpay", reason="bad signature") == 1
    size = "pipeline_ingest_body_bytes_sum"
    got = sample(after.text, size, provider="btcpay")
    assert got - sample(before, size, provider="btcpay") == 2 * len(body)
