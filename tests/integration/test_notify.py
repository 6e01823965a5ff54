"""Merchant notifications on the real stack: signed webhooks from the notifier to real HTTP
receivers in this process, each request verified with the official ``standardwebhooks``.

Each test runs a notifier of its own (its endpoints, its consumer group starting at the end of
``payments.transitions``) with a short retry schedule (``FAST``: 0.2-0.4 s, doubling, at most
3 s between tries), so that the tests wait seconds where the default schedule waits minutes;
the schedule itself is the configured one (notify/schedule.py). The receiver of the "down for
a minute" test is really down for a minute (``NOTIFY_TEST_DOWN_S`` shortens it by hand).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from notify.message import webhook_id
from pipeline.settings import Settings
from stack import launcher
from tests.integration.notify_kit import (
    BlackHole,
    Notifier,
    Receiver,
    endpoint_toml,
    outbox_times,
    published_at,
    send,
    whsec,
)
from tests.integration.waiting import eventually

FAST: dict[str, Any] = {"retry_first_s": 0.4, "retry_factor": 2.0, "retry_max_s": 3.0}
DOWN_S = float(os.environ.get("NOTIFY_TEST_DOWN_S", "60"))


def pid() -> str:
    return f"pay_{uuid.uuid4().hex[:12]}"


async def until(rx: Receiver, n: int, payment: str | None = None, timeout: float = 30) -> None:
    async def seen() -> int:
        return len(rx.of(payment) if payment else rx.got)

    await eventually(seen, lambda k: k >= n, timeout, f"{n} notifications at {rx.url}")


async def test_delivery_within_a_second_signed_once_per_secret(
    stack: launcher.StackInfo,
    api: httpx.AsyncClient,
    settings: Settings,
    tmp_path: Path,
    pg: asyncpg.Pool,
) -> None:
    rx = Receiver([whsec("current"), whsec("previous")])  # rotation: both must verify
    await rx.start()
    n = Notifier(stack, tmp_path, endpoint_toml(rx.url, rx.secrets), **FAST)
    await n.start()
    try:
        pay = pid()
        t0 = time.monotonic()
        await send(api, settings, pay, "pending", "2026-11-01T10:00:00Z")
        await until(rx, 1, pay)
        t1 = time.monotonic()
        wid = await send(api, settings, pay, "completed", "2026-11-01T10:05:00Z")
        await until(rx, 2, pay)
        first, second = rx.of(pay)
        done = await published_at(pg, rx.url)
        lags = [first.wall - done[(pay, 1)], second.wall - done[(pay, 2)]]
        assert max(lags) < 1.0, (lags, "from ingest's 202:", first.at - t0, second.at - t1)
        assert second.doc == {
            "type": "payment.completed",
            "timestamp": "2026-11-01T10:05:00Z",
            "data": {
                "provider": "standard", "external_id": pay, "status": "completed",
                "previous_status": "pending", "version": 2, "amount": "12.50",
                "currency": "USDC", "order_id": f"order-{pay}",
            },
        }  # fmt: skip
        assert first.doc["data"]["previous_status"] == "new" and first.doc["data"]["version"] == 1
        assert second.webhook_id == webhook_id("standard", pay, 2, rx.url)
        # a redelivered webhook re-sends its transition (a duplicate): no second notification
        await send(api, settings, pay, "completed", "2026-11-01T10:05:00Z", webhook_id=wid)
        await asyncio.sleep(3)
        assert len(rx.of(pay)) == 2 and not rx.bad, rx.bad
    finally:
        n.kill()
        await rx.stop()


async def test_503_twice_then_200_gets_the_same_id_three_times_and_nothing_after(
    stack: launcher.StackInfo,
    api: httpx.AsyncClient,
    dash: httpx.AsyncClient,
    settings: Settings,
    tmp_path: Path,
    ch: Any,
) -> None:
    rx = Receiver([whsec("flaky")], answer=lambda _id, k: 503 if k <= 2 else 200)
    await rx.start()
    n = Notifier(stack, tmp_path, endpoint_toml(rx.url, rx.secrets), **FAST)
    await n.start()
    try:
        pay = pid()
        await send(api, settings, pay, "pending", "2026-11-01T10:00:00Z")
        await until(rx, 3, pay, timeout=15)
        await asyncio.sleep(4)  # longer than the longest wait of the schedule
        got = rx.of(pay)
        assert [r.answered for r in got] == [503, 503, 200]
        assert len({r.webhook_id for r in got}) == 1 and len({r.body for r in got}) == 1
        gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
        assert 0.15 < gaps[0] < 1.5 and gaps[1] > 0.3, gaps
        wid = got[0].webhook_id

        async def attempts() -> list[tuple[int, int, str]]:
            q = (
                "SELECT attempt, status_code, result FROM notify_attempts "
                "WHERE webhook_id = {w:String} ORDER BY attempt"
            )
            return [tuple(r) for r in ch.query(q, parameters={"w": wid}).result_rows]

        rows = await eventually(attempts, lambda r: len(r) >= 3, 15, "attempts in ClickHouse")
        assert rows == [(1, 503, "pending"), (2, 503, "pending"), (3, 200, "delivered")]
        token = settings.dashboard.token.get_secret_value()
        r = await dash.get(
            "/dashboard/api/notifications", headers={"authorization": f"Bearer {token}"}
        )
        [panel] = [e for e in r.json()["endpoints"] if e["endpoint"] == rx.url]
        assert (panel["attempts"], panel["delivered"], panel["retried"]) == (3, 1, 2)
        assert panel["success"] == 0.3333 and panel["backlog"]["pending"] == 0
    finally:
        n.kill()
        await rx.stop()


async def test_a_receiver_down_for_a_minute_gets_everything_after_in_version_order(
    stack: launcher.StackInfo, api: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    rx = Receiver([whsec("down")])  # not started: connection refused
    n = Notifier(stack, tmp_path, endpoint_toml(rx.url, rx.secrets), **FAST)
    await n.start()
    try:
        down_at = time.monotonic()
        pays = [pid() for _ in range(5)]
        chain = [("pending", "10:00"), ("confirmed", "10:02"), ("completed", "10:04")]
        for status, hhmm in chain:
            for pay in pays:
                await send(api, settings, pay, status, f"2026-11-01T{hhmm}:00Z")
        await asyncio.sleep(max(0.0, DOWN_S - (time.monotonic() - down_at)))
        await rx.start()
        up_at = time.monotonic()
        await until(rx, 15, timeout=30)
        await asyncio.sleep(2)
        for pay in pays:
            got = rx.of(pay)
            assert [r.doc["data"]["status"] for r in got] == [s for s, _ in chain], pay
            assert [r.doc["data"]["version"] for r in got] == [1, 2, 3]
        assert rx.got[-1].at - up_at < 10, "all within one retry interval or so of coming back"
        assert not rx.bad
    finally:
        n.kill()
        await rx.stop()


async def test_a_dead_endpoint_does_not_slow_a_healthy_one(
    stack: launcher.StackInfo,
    api: httpx.AsyncClient,
    settings: Settings,
    tmp_path: Path,
    pg: asyncpg.Pool,
) -> None:
    dead, rx = BlackHole(), Receiver([whsec("healthy")])
    await dead.start()
    await rx.start()
    endpoints = endpoint_toml(
        f"http://127.0.0.1:{dead.port}/hooks", [whsec("dead")], timeout_s=30, max_in_flight=2
    ) + endpoint_toml(rx.url, rx.secrets)
    n = Notifier(stack, tmp_path, endpoints, **FAST)
    await n.start()
    try:
        sent: dict[str, float] = {}
        for _ in range(20):
            pay = pid()
            await send(api, settings, pay, "pending", "2026-11-01T10:00:00Z")
            sent[pay] = time.monotonic()
            await asyncio.sleep(0.1)
        await until(rx, 20, timeout=15)
        times = await outbox_times(pg, rx.url)
        lags = sorted(rx.of(p)[0].wall - times[(p, 1)][0] for p in sent)
        # (publication -> outbox insert, outbox insert -> receipt): where a slow one waited
        split = sorted(
            (
                round(rx.of(p)[0].wall - times[(p, 1)][0], 3),
                round(times[(p, 1)][1] - times[(p, 1)][0], 3),
                round(rx.of(p)[0].wall - times[(p, 1)][1], 3),
            )
            for p in sent
        )
        # the dead endpoint's two slots hang for 30 s each, its other deliveries queue behind
        # them: had the healthy endpoint waited on them at all, a delivery would lag by tens
        # of seconds. Bounds far from that, so that a loaded machine's stalls do not matter;
        # delivery within a second is the first test's
        assert lags[len(lags) // 2] < 2.0 and lags[-1] < 10.0, (lags[-4:], split[-4:])
    finally:
        n.kill()
        await rx.stop()
        await dead.stop()


async def test_a_sigkilled_notifier_loses_nothing_and_a_replay_sends_nothing_again(
    stack: launcher.StackInfo, api: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    rx = Receiver([whsec("kill")])
    rx.delay_s = 0.05
    await rx.start()
    toml = endpoint_toml(rx.url, rx.secrets, max_in_flight=4)
    n = Notifier(stack, tmp_path, toml, **FAST)
    starts = await n.start()
    try:
        pays = [pid() for _ in range(40)]
        for pay in pays:
            await send(api, settings, pay, "pending", "2026-11-01T10:00:00Z")
            await send(api, settings, pay, "completed", "2026-11-01T10:05:00Z")
            if len(rx.got) >= 10 and n.child and n.child.poll() is None:
                n.kill()  # SIGKILL, requests under way
        assert n.child and n.child.poll() is not None, "killed while sending"
        await n.start(at_end=False)  # the same group: it resumes from its commits
        want = {webhook_id("standard", p, v, rx.url) for p in pays for v in (1, 2)}

        async def distinct() -> set[str]:  # re-sent ones do not count towards the 80
            return {r.webhook_id for r in rx.got}

        ids = await eventually(distinct, lambda got: got >= want, 60, "80 distinct notifications")
        assert ids == want
        again = len(rx.got) - len(ids)
        assert again <= 4, f"{again} re-sent: at most the requests under way at the kill"
        for wid in ids:
            assert len({r.body for r in rx.got if r.webhook_id == wid}) == 1
        for pay in pays:  # a re-sent version 1 (acknowledged, not recorded) comes before 2
            versions = [r.doc["data"]["version"] for r in rx.of(pay)]
            assert versions == sorted(versions), (pay, versions)
        n.kill(sig=15)
        before = len(rx.got)
        await n.rewind(starts)  # replay every transition of this test
        await n.start(at_end=False)
        await asyncio.sleep(5)
        assert len(rx.got) == before, "a replay re-sends nothing acknowledged"
        assert not rx.bad
    finally:
        n.kill()
        await rx.stop()
