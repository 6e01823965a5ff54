"""Every query of docs/analytics.md runs on the real ClickHouse, over real pipeline data."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.settings import Settings
from pipeline.traffic import payments, requests
from tests.integration.test_stream_semantics import send
from tests.integration.waiting import eventually

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)


def test_the_doc_has_queries() -> None:
    assert len(QUERIES) >= 8


@pytest.fixture(scope="module")
async def traffic(api: httpx.AsyncClient, ch: Any, settings: Settings) -> None:
    pays = payments(60, seed=404)
    await send(
        api, requests(pays, settings.providers, seed=404, duplicate_share=0.5, now=time.time())
    )
    ids = [p.external_id for p in pays]
    # an authentic but unreadable webhook: answered 400 and kept as a dead letter
    body = b"[1, 2, 3]"
    secret = settings.providers.coinbase.secrets[0].get_secret_value().encode()
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    r = await api.post("/webhooks/coinbase", content=body, headers={"x-cc-webhook-signature": sig})
    assert r.status_code == 400

    async def delivered() -> int:
        return int(
            ch.query(
                "SELECT count() FROM ingest_log WHERE event_id IN "
                "(SELECT event_id FROM payment_events WHERE external_id IN {ids:Array(String)})",
                parameters={"ids": ids},
            ).result_rows[0][0]
        )

    await eventually(
        delivered, lambda n: n > sum(len(p.events) for p in pays), what="deliveries logged"
    )

    async def dead() -> int:
        return int(
            ch.query("SELECT count() FROM dead_letters WHERE stage = 'ingest'").result_rows[0][0]
        )

    await eventually(dead, lambda n: n >= 1, what="the ingest dead letter in ClickHouse")


@pytest.mark.parametrize("sql", QUERIES, ids=[f"q{i}" for i in range(len(QUERIES))])
def test_analytics_query_runs_and_answers(sql: str, traffic: None, ch: Any) -> None:
    rows = ch.query(sql).result_rows
    assert rows, f"no rows for:\n{sql}"
