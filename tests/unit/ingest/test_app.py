"""The ingest HTTP contract, with an in-memory writer standing in for Kafka."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from litestar.testing import TestClient

from domain.records import KIND_CHECKOUT
from ingest.app import create_app
from ingest.writer import MemoryWriter
from pipeline.settings import Settings
from testing.webhooks import SampleEvent, signed_request

PROVIDERS = ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard", "jwt")


def sample(provider: str) -> SampleEvent:
    return SampleEvent(
        provider,
        "pay-1",
        "pending",
        Decimal("12.50"),
        "USDC",
        datetime.now(UTC),
        "evt-1",
        "order-1",
    )


@pytest.fixture
def writer() -> MemoryWriter:
    return MemoryWriter()


@pytest.fixture
def client(settings: Settings, writer: MemoryWriter) -> Iterator[TestClient]:
    """The merchant API's client: every request carries the first configured API token."""
    token = settings.api.tokens[0].get_secret_value()
    with TestClient(create_app(settings, writer)) as c:
        c.headers["authorization"] = f"Bearer {token}"
        yield c


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signed_webhook_is_accepted_and_written_raw(
    provider: str,
    client: TestClient,
    writer: MemoryWriter,
    settings: Settings,
) -> None:
    body, headers = signed_request(sample(provider), settings.providers, time.time())
    r = client.post(f"/webhooks/{provider}", content=body, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["id"] == writer.raw[0].id
    assert writer.raw[0].body == body  # byte for byte
    assert writer.raw[0].provider == provider
    assert r.headers["x-request-id"] == writer.raw[0].request_id


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tampered_body_is_401_and_nothing_written(
    provider: str,
    client: TestClient,
    writer: MemoryWriter,
    settings: Settings,
) -> None:
    body, headers = signed_request(sample(provider), settings.providers, time.time())
    tampered = body.replace(b"12.5", b"99.5")
    assert tampered != body
    r = client.post(f"/webhooks/{provider}", content=tampered, headers=headers)
    assert r.status_code == 401
    assert r.json()["detail"].startswith("signature rejected")
    assert writer.raw == []


def test_missing_signature_header_is_named(client: TestClient) -> None:
    r = client.post(
        "/webhooks/coinbase", content=b'{"a": 1}', headers={"content-type": "application/json"}
    )
    assert r.status_code == 401
    assert "missing x-cc-webhook-signature header" in r.json()["detail"]


def test_error_details_never_echo_secrets(client: TestClient, settings: Settings) -> None:
    r = client.post(
        "/webhooks/coinbase", content=b'{"a": 1}', headers={"x-cc-webhook-signature": "ab" * 32}
    )
    secret = settings.providers.coinbase.secrets[0].get_secret_value()
    assert r.status_code == 401 and secret not in r.text


def test_unknown_provider_is_404(client: TestClient) -> None:
    r = client.post("/webhooks/paypal", content=b"{}")
    assert r.status_code == 404 and "unknown provider" in r.json()["detail"]


def test_too_large_is_413(client: TestClient, settings: Settings) -> None:
    r = client.post("/webhooks/coinbase", content=b"x" * (settings.ingest.max_body_bytes + 1))
    assert r.status_code == 413 and r.json()["detail"]


def test_wrong_content_type_is_415(client: TestClient) -> None:
    r = client.post("/webhooks/coinbase", content=b"{}", headers={"content-type": "text/html"})
    assert r.status_code == 415 and "application/json" in r.json()["detail"]


def test_empty_body_is_400(client: TestClient) -> None:
    r = client.post("/webhooks/coinbase", content=b"")
    assert r.status_code == 400 and r.json()["detail"] == "empty body"


def test_authentic_but_unreadable_is_400_and_kept_as_dead_letter(
    client: TestClient,
    writer: MemoryWriter,
    settings: Settings,
) -> None:
    import hashlib
    import hmac

    body = b"[1, 2, 3]"
    secret = settings.providers.coinbase.secrets[0].get_secret_value().encode()
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    r = client.post("/webhooks/coinbase", content=body, headers={"x-cc-webhook-signature": sig})
    assert r.status_code == 400 and "not a JSON object" in r.json()["detail"]
    assert writer.raw == []
    assert [(d.body, reason) for d, reason in writer.dead] == [(body, "body is not a JSON object")]


def test_broker_down_is_503_with_retry_after(
    client: TestClient,
    writer: MemoryWriter,
    settings: Settings,
) -> None:
    writer.down = True
    body, headers = signed_request(sample("coinbase"), settings.providers, time.time())
    r = client.post("/webhooks/coinbase", content=body, headers=headers)
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) > 0 and "broker unavailable" in r.json()["detail"]
    assert client.get("/ready").status_code == 503


def test_request_id_is_echoed_when_safe(client: TestClient) -> None:
    assert (
        client.get("/health", headers={"x-request-id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    made = client.get("/health", headers={"x-request-id": "bad id\n"}).headers["x-request-id"]
    assert made != "bad id\n" and len(made) == 32


def test_cors_is_closed_by_default(client: TestClient) -> None:
    r = client.options(
        "/webhooks/coinbase",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers


def test_cors_allows_only_configured_origins(settings: Settings) -> None:
    open_settings = settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(update={"cors_origins": ["https://shop.example"]})
        }
    )
    with TestClient(create_app(open_settings, MemoryWriter())) as c:
        ok = c.get("/health", headers={"origin": "https://shop.example"})
        bad = c.get("/health", headers={"origin": "https://evil.example"})
    assert ok.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-origin" not in bad.headers


def test_checkout_is_validated_and_written(client: TestClient, writer: MemoryWriter) -> None:
    good = {
        "provider": "btcpay",
        "external_id": "inv-1",
        "order_id": "o-1",
        "amount": "12.50",
        "currency": "USDC",
    }
    r = client.post("/checkouts", json=good)
    assert r.status_code == 202
    assert writer.raw[0].kind == KIND_CHECKOUT and orjson.loads(writer.raw[0].body) == good
    for bad in (
        {**good, "amount": "-1"},
        {**good, "amount": "1e5"},
        {**good, "provider": "x"},
        {**good, "currency": "US D"},
        {k: v for k, v in good.items() if k != "order_id"},
        {**good, "amount": "0"},
    ):
        r = client.post("/checkouts", json=bad)
        assert r.status_code == 400, bad
        assert r.json()["detail"]
    assert len(writer.raw) == 1
