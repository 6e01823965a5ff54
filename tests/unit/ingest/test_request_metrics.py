"""Ingest's Prometheus metrics of a webhook (moved here from the dashboard's tests when the
dashboard left ingest), counted in process without any service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from litestar.testing import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ingest.app import create_app
from ingest.writer import MemoryWriter
from pipeline.settings import Settings
from testing.webhooks import SampleEvent, signed_request
from tests.explicit_settings import unit_settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, MemoryWriter())) as c:
        yield c


def test_metrics_count_a_webhook_by_provider_code_and_size(client: TestClient) -> None:
    def sample(text: str, name: str, **labels: str) -> float:
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == name and labels.items() <= s.labels.items()
        )

    assert client.get("/metrics").status_code == 404  # only on the internal metrics port
    before = generate_latest().decode()
    ev = SampleEvent(
        "btcpay", "p-1", "pending", Decimal("1.5"), "BTC", datetime.now(UTC), "e-1", "o-1"
    )
    body, headers = signed_request(ev, unit_settings().providers, time.time())
    assert client.post("/webhooks/btcpay", content=body, headers=headers).status_code == 202
    headers["btcpay-sig"] = "sha256=" + "0" * 64
    assert client.post("/webhooks/btcpay", content=body, headers=headers).status_code == 401
    after = generate_latest().decode()
    requests = "pipeline_ingest_requests_total"
    for code in ("202", "401"):
        got = sample(after, requests, provider="btcpay", code=code)
        assert got - sample(before, requests, provider="btcpay", code=code) == 1
    failures = "pipeline_ingest_verification_failures_total"
    got = sample(after, failures, provider="btcpay", reason="bad signature")
    assert got - sample(before, failures, provider="btcpay", reason="bad signature") == 1
    size = "pipeline_ingest_body_bytes_sum"
    got = sample(after, size, provider="btcpay")
    assert got - sample(before, size, provider="btcpay") == 2 * len(body)
