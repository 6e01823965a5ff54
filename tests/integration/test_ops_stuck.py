"""Stuck payments on the real stack: registered or pending with no news for longer than a
limit, listed by `pipeline stuck`, the dashboard and the ClickHouse view stuck_payments."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import orjson

from pipeline.settings import Settings
from stack import launcher
from testing.webhooks import SampleEvent, signed_request
from tests.integration.test_ops import pipeline
from tests.integration.test_stream_semantics import register_checkout
from tests.integration.waiting import eventually


async def webhook(api: httpx.AsyncClient, settings: Settings, ext: str, status: str) -> None:
    ev = SampleEvent(
        "standard", ext, status, Decimal("5.00"), "USDC", datetime.now(UTC), f"evt-{ext}", "o"
    )
    body, headers = signed_request(ev, settings.providers, time.time())
    r = await api.post("/webhooks/standard", content=body, headers=headers)
    assert r.status_code == 202, r.text


async def test_stuck_payments_are_listed_by_the_cli_the_dashboard_and_clickhouse(
    stack: launcher.StackInfo,
    api: httpx.AsyncClient,
    dash: httpx.AsyncClient,
    pg: asyncpg.Pool,
    ch: Any,
    settings: Settings,
) -> None:
    tag = uuid.uuid4().hex[:8]
    pending, paid, registered = f"stuck-p-{tag}", f"stuck-c-{tag}", f"stuck-r-{tag}"
    await webhook(api, settings, pending, "pending")
    await webhook(api, settings, paid, "completed")
    await register_checkout(api, registered, "7.00")
    want = {pending: "pending", paid: "completed", registered: "new"}

    async def statuses() -> dict[str, str]:
        rows = await pg.fetch(
            "SELECT external_id, status FROM transactions WHERE external_id = ANY($1::text[])",
            list(want),
        )
        return {r["external_id"]: r["status"] for r in rows}

    await eventually(statuses, lambda got: got == want, what="the three payments in Postgres")
    ours = set(want)

    async def listed() -> dict[str, Any]:
        done = await asyncio.to_thread(pipeline, stack, "stuck", "--older-than", "2s", "--json")
        assert done.returncode == 0, done.stderr
        return {r["external_id"]: r for r in orjson.loads(done.stdout) if r["external_id"] in ours}

    # once they are 2 s old: the pending one and the bare registration, never the completed one
    found = await eventually(
        listed, lambda got: {pending, registered} <= set(got), what="both listed as stuck"
    )
    assert set(found) == {pending, registered}
    assert found[registered]["expected_amount"] == "7.00" and found[pending]["waiting_s"] >= 2
    human = pipeline(stack, "stuck", "--older-than", "2s")
    assert human.returncode == 0 and pending in human.stdout and registered in human.stdout
    assert paid not in human.stdout
    # the configured limit (stuck_after_s, 30 minutes) is not reached yet
    default = pipeline(stack, "stuck", "--json")
    assert default.returncode == 0, default.stderr
    assert not ours & {r["external_id"] for r in orjson.loads(default.stdout)}

    token = settings.dashboard.token.get_secret_value()
    r = await dash.get(
        "/dashboard/api/stuck",
        params={"older_than_s": 2, "limit": 500},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    assert {p["external_id"] for p in r.json()["payments"]} & ours == {pending, registered}
    refused = await dash.get("/dashboard/api/stuck")
    assert refused.status_code == 401
    assert refused.json()["detail"] == "dashboard token missing or wrong"
    assert pending not in refused.text
    page = await dash.get("/dashboard/static/index.html")
    assert page.status_code == 200 and 'id="stuck-list"' in page.text

    # ClickHouse knows payments with events (a bare registration has none there)
    def in_clickhouse() -> dict[str, str]:
        rows = ch.query(
            "SELECT external_id, status FROM stuck_payments(older_than_s = 2) "
            "WHERE external_id IN {ids:Array(String)}",
            parameters={"ids": list(ours)},
        ).result_rows
        return dict(rows)

    async def probe() -> dict[str, str]:
        return in_clickhouse()

    assert await eventually(probe, lambda got: pending in got, what="the ClickHouse view") == {
        pending: "pending"
    }
