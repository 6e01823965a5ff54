"""Notifier: notifications per second of one notifier process (transitions consumed, written
to the outbox, signed and POSTed, outcomes recorded) against a plain async HTTP client
(aiohttp) POSTing the same signed requests at the same concurrency, to the same receiver (a
process of its own that answers 204), in one run. The gap is the price of durability: an
outbox insert before the offset commit, a lease and an outcome per delivery."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from bench import common
from domain.model import Status
from domain.records import TRANSITION, Transition, encode
from notify import READY_LINE
from notify.message import Delivery, Endpoint, deliveries
from notify.sign import Signer
from pipeline.settings import Settings
from stack import launcher, proc, services

COUNT = int(os.environ.get("BENCH_NOTIFY_COUNT", "10000"))
CONCURRENCY = 32
SECRET = "whsec_YmVuY2gtbm90aWZ5LXNlY3JldA=="


def transitions(n: int, run: str) -> list[bytes]:
    """``n`` transition records to ``completed``, as the stream worker writes them."""
    at = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    return [
        encode(
            Transition(
                event_id=f"bench:{run}-{i}:2",
                provider="bench",
                external_id=f"{run}-{i}",
                status=Status.COMPLETED,
                occurred_at=at,
                provider_status="completed",
                amount=Decimal("12.50"),
                currency="USDC",
                order_id=f"o-{i}",
                from_status=Status.PENDING,
                to_status=Status.COMPLETED,
                applied=True,
                note="",
                version=2,
                payment_amount=Decimal("12.50"),
                payment_currency="USDC",
            )
        )
        for i in range(n)
    ]


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await p.start()
    try:
        for v in values:
            await p.send(topic, v, key=orjson.loads(v)["external_id"].encode())
        await p.flush()
    finally:
        await p.stop()


def plain_deliveries(url: str, values: list[bytes]) -> list[Delivery]:
    """What the notifier would send to ``url`` for these transition records."""
    ep = Endpoint(url, (SECRET,), None)
    return [d for v in values for d in deliveries(TRANSITION.decode(v), [ep])]


async def plain_client(url: str, values: list[bytes]) -> float:
    """The floor: the same signed POSTs from one aiohttp session, CONCURRENCY at a time."""
    ds = plain_deliveries(url, values)
    signer, sem = Signer([SECRET]), asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:

        async def one(body: bytes, wid: str) -> None:
            async with sem:
                headers = signer.headers(wid, int(time.time()), body)
                async with s.post(url, data=body, headers=headers) as r:
                    assert r.status == 204

        t0 = time.perf_counter()
        await asyncio.gather(*(one(d.body, d.webhook_id) for d in ds))
        return time.perf_counter() - t0


async def delivered(dsn: str, url: str) -> tuple[int, float]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM max(finished_at) - min(created_at))::float8"
            " AS s FROM notify_outbox WHERE endpoint = $1 AND state = 'delivered'",
            url,
        )
    finally:
        await conn.close()
    return (int(row["n"]), float(row["s"] or 0.0)) if row else (0, 0.0)


async def notifier_run(info: launcher.StackInfo, url: str, values: list[bytes]) -> dict[str, Any]:
    endpoint = [{"url": url, "secrets": [SECRET], "max_in_flight": CONCURRENCY}]
    env = {
        **launcher.service_env(info),
        "PIPELINE_NOTIFY__ENDPOINTS": orjson.dumps(endpoint).decode(),
        "PIPELINE_NOTIFY__GROUP": f"bench-{uuid.uuid4().hex[:6]}",
        "PIPELINE_LOG_LEVEL": "WARNING",
    }
    log = common.BENCH_RUN / "logs" / "notify.log"
    child = proc.spawn([sys.executable, "-m", "notify.main"], log, env=env, cwd=services.REPO)
    try:
        proc.wait_until("notify", lambda: READY_LINE in log.read_text(), child, log, timeout=60)
        cpu0 = proc.cpu_seconds(child.pid)
        t0 = time.monotonic()
        await produce(info.kafka_bootstrap, "payments.transitions", values)
        n = 0
        while n < len(values) and time.monotonic() - t0 < 240:
            await asyncio.sleep(0.2)
            n, _ = await delivered(info.postgres_dsn, url)
        wall = time.monotonic() - t0
        cpu_s = proc.cpu_seconds(child.pid) - cpu0
        n, span = await delivered(info.postgres_dsn, url)
        rss = common.pids_rss(child.pid)
    finally:
        proc.stop(child.pid)
        child.wait()
    per = round(cpu_s / n * 1e6) if n else None
    return {"delivered": n, "wall_s": round(wall, 2), "span_s": round(span, 2), "rss_mb": rss,
            "cpu_us_per_notification": per}  # fmt: skip


async def run(info: launcher.StackInfo) -> dict[str, Any]:
    port = proc.free_port()
    log = common.BENCH_RUN / "logs" / "notify-receiver.log"
    cmd = [sys.executable, "-m", "bench.notify_bench", "receiver", str(port)]
    rx = proc.spawn(cmd, log, cwd=services.REPO)
    try:
        proc.wait_until("receiver", lambda: proc.port_open(port), rx, log, timeout=30)
        url = f"http://127.0.0.1:{port}/hooks"
        floor_s = await plain_client(url + "?floor", transitions(COUNT, "floor"))
        got = await notifier_run(info, url, transitions(COUNT, uuid.uuid4().hex[:6]))
    finally:
        proc.stop(rx.pid)
        rx.wait()
    rate = got["delivered"] / got["wall_s"] if got["wall_s"] else 0.0
    floor = COUNT / floor_s
    return {
        "count": COUNT,
        "concurrency": CONCURRENCY,
        "plain_client_per_s": round(floor, 1),
        "notifier_per_s": round(rate, 1),
        "ratio": round(rate / floor, 3) if floor else None,
        **got,
    }


def bench(settings: Settings) -> dict[str, Any]:
    with common.infra(settings, "notify") as info:
        return asyncio.run(run(info))


def receiver(port: int) -> None:
    from aiohttp import web

    async def ok(_: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", ok)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    if sys.argv[1:2] == ["receiver"]:
        receiver(int(sys.argv[2]))


def render(n: dict[str, Any]) -> list[str]:
    """The section of docs/benchmarks.md."""
    return [
        "## Notifier",
        "",
        f"{n['count']} transitions, one endpoint (a receiver process answering 204), "
        f"{n['concurrency']} requests at a time. One notifier process (consume, outbox insert, "
        "lease, sign, POST, outcome write-back) against a plain aiohttp client POSTing the same "
        "signed requests (bench/notify_bench.py).",
        "",
        "| | notifications/s | |",
        "|---|---:|---|",
        f"| plain aiohttp client | {n['plain_client_per_s']:,.0f} | the floor |",
        f"| notifier | {n['notifier_per_s']:,.0f} | {n['ratio']:.0%} of the floor, "
        f"{n.get('cpu_us_per_notification') or 0:,} µs of CPU per notification, "
        f"{n['rss_mb']} MB resident |",
        "",
    ]
