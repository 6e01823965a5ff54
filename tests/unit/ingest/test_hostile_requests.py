"""Hostile requests the chaos suites found answered with 500, each now a documented answer
(in-memory writer: nothing running; tests/chaos has the same against the real stack)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from ingest.app import create_app
from ingest.writer import MemoryWriter
from pipeline.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, MemoryWriter())) as c:
        c.headers["authorization"] = f"Bearer {settings.api.tokens[0].get_secret_value()}"
        yield c


def detail(r: object) -> str:
    body = r.json()  # type: ignore[attr-defined]
    assert isinstance(body["detail"], str) and body["detail"]
    return body["detail"]


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b'{"":"\x80"}'],
)
def test_undecodable_checkouts_are_400(client: TestClient, body: bytes) -> None:
    r = client.post("/checkouts", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    # msgspec 0.23 reports bad UTF-8 itself, earlier releases let Litestar's handler do it
    assert detail(r).startswith(("unreadable body", "Invalid UTF-8"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("external_id", "a\x00b"),
        ("external_id", "abc\n"),
        ("order_id", "\x1b[31m"),
        ("amount", "\u0661\u0662"),
        ("amount", "12\n"),
        ("currency", "USD\n"),
    ],
)
def test_checkout_fields_must_be_printable_and_ascii(
    client: TestClient, field: str, value: str
) -> None:
    doc = {
        "provider": "coinbase",
        "external_id": "pay-1",
        "order_id": "order-1",
        "amount": "12.50",
        "currency": "USDC",
    }
    r = client.post("/checkouts", json={**doc, field: value})
    assert r.status_code == 400, r.text
    detail(r)


@pytest.mark.parametrize("external_id", ["a%00b", "%00", "x" * 600])
def test_ids_no_payment_can_have_are_404_without_a_query(
    client: TestClient, external_id: str
) -> None:
    r = client.get(f"/transactions/coinbase/{external_id}")  # no Postgres here: no query made
    assert r.status_code == 404
    assert detail(r) == "no such transaction"


def test_a_non_utf8_request_id_is_replaced(client: TestClient) -> None:
    r = client.get("/health", headers={"x-request-id": b"\xff\xfe"})  # type: ignore[dict-item]
    assert r.status_code == 200
    assert len(r.headers["x-request-id"]) == 32


def test_a_refused_preflight_is_json(settings: Settings) -> None:
    ingest = settings.ingest.model_copy(update={"cors_origins": ["https://shop.example"]})
    app = create_app(settings.model_copy(update={"ingest": ingest}), MemoryWriter())
    with TestClient(app) as client:
        headers = {"origin": "https://evil.example", "access-control-request-method": "POST"}
        r = client.options("/webhooks/coinbase", headers=headers)
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/json")
        assert "access-control-allow-origin" not in r.headers
        assert "CORS" in detail(r)
        ok = client.options(
            "/webhooks/coinbase", headers={**headers, "origin": "https://shop.example"}
        )
        assert ok.headers["access-control-allow-origin"] == "https://shop.example"


def test_the_openapi_document_is_served(client: TestClient) -> None:
    doc = client.get("/schema/openapi.json").json()
    assert doc["info"]["title"] == "checkout-pipeline ingest"
    assert "408" in doc["paths"]["/webhooks/{provider}"]["post"]["responses"]
