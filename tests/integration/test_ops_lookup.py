"""A payment by the provider's human reference (Coinbase: the charge code) on the real stack:
``GET /transactions?provider=&reference=`` (``pipeline inspect`` by code: test_ops.py)."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from domain.records import PaymentEvent
from pipeline.settings import Settings
from testing.traffic import payments, requests
from tests.auth import api_token
from tests.integration.test_stream_semantics import assert_converged, send


async def test_unknown_references_are_404_and_the_route_needs_the_token(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    auth = {"Authorization": f"Bearer {api_token(settings)}"}
    r = await api.get("/transactions", params={"provider": "coinbase", "reference": "NOPE"})
    assert r.status_code == 401 and r.json()["detail"]
    r = await api.get(
        "/transactions", params={"provider": "coinbase", "reference": "NOPE"}, headers=auth
    )
    assert r.status_code == 404 and r.json()["detail"] == "no such transaction"
    r = await api.get("/transactions", params={"provider": "nope", "reference": "X"}, headers=auth)
    assert r.status_code == 404 and r.json()["detail"], r.text
    r = await api.get("/transactions", params={"provider": "coinbase"}, headers=auth)
    assert r.status_code == 400 and "reference" in r.text


@pytest.mark.skipif(
    not hasattr(PaymentEvent, "reference"),
    reason="the stream records do not carry the provider's reference yet "
    "(PaymentEvent.reference, Coinbase: charge.code)",
)
async def test_a_coinbase_charge_is_found_by_its_code(
    api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    [pay] = payments(1, seed=1212, providers=("coinbase",))
    reqs = requests([pay], settings.providers, seed=1212, now=time.time())
    await send(api, reqs)
    await assert_converged(pg, ch, [pay])
    code = orjson.loads(reqs[0].body)["event"]["data"]["code"]
    auth = {"Authorization": f"Bearer {api_token(settings)}"}
    by_code = await api.get(
        "/transactions", params={"provider": "coinbase", "reference": code}, headers=auth
    )
    assert by_code.status_code == 200, by_code.text
    by_id = await api.get(f"/transactions/coinbase/{pay.external_id}", headers=auth)
    assert by_code.json() == by_id.json()
    assert by_code.json()["external_id"] == pay.external_id
