"""One signed Coinbase webhook all the way through: ingest -> Kafka -> Faust -> Postgres,
ClickHouse, and the API."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

import asyncpg
import httpx
import orjson

from pipeline.settings import Settings
from tests.integration.waiting import eventually


def coinbase_body(charge_id: str, event_type: str, created_at: str) -> bytes:
    return orjson.dumps(
        {
            "id": str(uuid.uuid4()),
            "scheduled_for": created_at,
            "attempt_number": 1,
            "event": {
                "id": str(uuid.uuid4()),
                "type": event_type,
                "created_at": created_at,
                "api_version": "2018-03-22",
                "resource": "event",
                "data": {
                    "id": charge_id,
                    "code": charge_id[:8].upper(),
                    "resource": "charge",
                    "pricing": {"local": {"amount": "12.50", "currency": "USD"}},
                    "metadata": {"order_id": "order-1"},
                    "payments": [],
                    "timeline": [],
                },
            },
        }
    )


def sign(settings: Settings, body: bytes) -> dict[str, str]:
    secret = settings.providers.coinbase.secrets[0].get_secret_value().encode()
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {"X-CC-Webhook-Signature": sig, "Content-Type": "application/json"}


async def test_signed_coinbase_webhook_reaches_postgres_clickhouse_and_api(
    api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    charge = str(uuid.uuid4())
    for etype, at in (
        ("charge:created", "2026-11-01T10:00:00Z"),
        ("charge:confirmed", "2026-11-01T10:05:00Z"),
    ):
        body = coinbase_body(charge, etype, at)
        r = await api.post("/webhooks/coinbase", content=body, headers=sign(settings, body))
        assert r.status_code == 202, r.text
        assert r.json()["id"]

    async def row() -> Any:
        return await pg.fetchrow(
            "SELECT * FROM transactions WHERE provider = 'coinbase' AND external_id = $1", charge
        )

    tx = await eventually(
        row, lambda r: r is not None and r["status"] == "completed", what="the Postgres row"
    )
    assert tx["version"] == 2 and str(tx["amount"]) == "12.50" and tx["currency"] == "USD"

    def ch_rows() -> Any:
        return ch.query(
            "SELECT event_id, status FROM payment_events FINAL "
            "WHERE external_id = {x:String} ORDER BY occurred_at",
            parameters={"x": charge},
        ).result_rows

    async def probe() -> Any:
        return ch_rows()

    rows = await eventually(probe, lambda r: len(r) == 2, what="the ClickHouse rows")
    assert [s for _, s in rows] == ["new", "completed"]

    r = await api.get(f"/transactions/coinbase/{charge}")
    assert r.status_code == 200
    doc = r.json()
    assert doc["status"] == "completed" and doc["external_id"] == charge
    assert [e["status"] for e in doc["events"]] == ["new", "completed"]


async def test_bad_signature_is_refused(api: httpx.AsyncClient) -> None:
    body = coinbase_body(str(uuid.uuid4()), "charge:created", "2026-11-01T10:00:00Z")
    r = await api.post(
        "/webhooks/coinbase", content=body, headers={"X-CC-Webhook-Signature": "00" * 32}
    )
    assert r.status_code == 401
    assert "signature" in r.json()["detail"]


async def test_unknown_provider_is_404(api: httpx.AsyncClient) -> None:
    r = await api.post("/webhooks/paypal", content=b"{}")
    assert r.status_code == 404 and r.json()["detail"]
