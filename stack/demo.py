"""``make run``: the stack, a burst of realistic signed webhooks, and what landed where.

Starts (or reuses) the local stack, sends every provider's webhooks shuffled and with
redeliveries, waits until Postgres and ClickHouse hold the expected end state, and prints a
summary with latencies. Exits non-zero, with one line, if anything did not land.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import asyncpg
import clickhouse_connect
import httpx
from rich.console import Console
from rich.table import Table

from pipeline.settings import ConfigError, Settings, load_settings
from pipeline.traffic import PROVIDERS, Payment, Request, payments, requests
from stack import launcher
from stack.errors import StartError

RUN_DIR = Path(os.environ.get("PIPELINE_RUN_DIR", ".run"))
console = Console()


async def send_all(
    url: str, reqs: list[Request], concurrency: int = 32
) -> tuple[Counter[tuple[str, int]], list[float]]:
    codes: Counter[tuple[str, int]] = Counter()
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:

        async def one(r: Request) -> None:
            async with sem:
                t0 = time.perf_counter()
                resp = await client.post(
                    f"/webhooks/{r.provider}", content=r.body, headers=r.headers
                )
                latencies.append(time.perf_counter() - t0)
                codes[(r.provider, resp.status_code)] += 1

        await asyncio.gather(*(one(r) for r in reqs))
    return codes, latencies


async def wait_landed(dsn: str, pays: list[Payment], timeout: float) -> dict[tuple[str, str], str]:
    want = {(p.provider, p.external_id): p.expected_status for p in pays}
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = await conn.fetch(
                "SELECT provider, external_id, status FROM transactions "
                "WHERE external_id = ANY($1::text[])",
                [p.external_id for p in pays],
            )
            got = {(r["provider"], r["external_id"]): r["status"] for r in rows}
            if all(got.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
        if len(values) > 1
        else values[0]
    )


async def main_async(settings: Settings, count: int) -> int:
    console.print(
        "[bold]Starting the local stack[/] (Kafka, Postgres, ClickHouse, ingest, streams, sinks)"
    )
    info = launcher.up(RUN_DIR, settings)
    for name, part in info.parts.items():
        console.print(f"  {name:<11} ready in {part.start_s:5.2f} s")
    seed = int(time.time()) % 100_000
    pays = payments(count, seed=seed)
    reqs = requests(pays, settings.providers, seed=seed)
    console.print(
        f"Sending {len(reqs)} signed webhooks for {len(pays)} payments "
        f"({sum(r.duplicate for r in reqs)} redeliveries, shuffled)"
    )
    t0 = time.perf_counter()
    codes, lat = await send_all(info.ingest_url, reqs)
    elapsed = time.perf_counter() - t0
    got = await wait_landed(info.postgres_dsn, pays, timeout=90)
    ids = [p.external_id for p in pays]
    conn = await asyncpg.connect(info.postgres_dsn)
    e2e = await conn.fetch(
        "SELECT extract(epoch FROM written_at - updated_at) AS s FROM transactions "
        "WHERE external_id = ANY($1::text[])",
        ids,
    )
    await conn.close()
    ch = clickhouse_connect.get_client(dsn=info.clickhouse_url)
    ch_counts: dict[str, int] = {
        str(prov): int(n)
        for prov, n in ch.query(
            "SELECT provider, count() FROM payment_events FINAL "
            "WHERE external_id IN {ids:Array(String)} "
            "GROUP BY provider",
            parameters={"ids": ids},
        ).result_rows
    }
    ch_lat = ch.query(
        "SELECT quantile(0.5)(dateDiff('millisecond', received_at, processed_at)), "
        "quantile(0.99)(dateDiff('millisecond', received_at, processed_at)) FROM payment_events "
        "WHERE external_id IN {ids:Array(String)}",
        parameters={"ids": ids},
    ).result_rows[0]

    table = Table(title="What landed where")
    for col in (
        "provider",
        "payments",
        "webhooks sent",
        "202",
        "Postgres rows right",
        "ClickHouse events",
        "events expected",
    ):
        table.add_column(col, justify="right")
    ok = True
    for prov in PROVIDERS:
        mine = [p for p in pays if p.provider == prov]
        sent = sum(1 for r in reqs if r.provider == prov)
        right = sum(1 for p in mine if got.get((prov, p.external_id)) == p.expected_status)
        events = sum(len(p.events) for p in mine)
        ch_n = ch_counts.get(prov, 0)
        ok &= right == len(mine) and ch_n == events
        table.add_row(
            prov,
            str(len(mine)),
            str(sent),
            str(codes.get((prov, 202), 0)),
            str(right),
            str(ch_n),
            str(events),
        )
    console.print(table)
    accepted = sum(n for (_, code), n in codes.items() if code == 202)
    answers = Counter[int]()
    for (_, code), n in codes.items():
        answers[code] += n
    console.print(
        f"HTTP answers: {dict(answers)}; {accepted / elapsed:,.0f} webhooks/s accepted "
        f"over {elapsed:.2f} s"
    )
    console.print(
        f"ingest 202 latency: p50 {pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms"
    )
    s = [float(r["s"]) for r in e2e]
    console.print(
        f"ingest -> Postgres row (last event): p50 {pct(s, 50) * 1000:.0f} ms, "
        f"p99 {pct(s, 99) * 1000:.0f} ms"
    )
    console.print(
        f"ingest -> processed (ClickHouse): p50 {ch_lat[0]:.0f} ms, p99 {ch_lat[1]:.0f} ms"
    )
    ok &= accepted == len(reqs)
    console.print(
        f"Stack still running: stop it with [bold]make down[/]. "
        f"Addresses in {RUN_DIR / 'stack.env'}"
    )
    if settings.api.tokens or settings.dashboard.token.get_secret_value():
        console.print(f"Dashboard: {info.ingest_url}/dashboard/ (sign in with an [api] token)")
    console.print("One payment's journey: .venv/bin/pipeline inspect PROVIDER EXTERNAL_ID")
    if not ok:
        console.print("[red]run: not every webhook landed as expected[/]")
        return 1
    console.print("[green]every webhook landed: Postgres and ClickHouse hold the expected state[/]")
    return 0


def main() -> None:
    try:
        settings = load_settings()
        count = int(os.environ.get("DEMO_PAYMENTS", "300"))
        sys.exit(asyncio.run(main_async(settings, count)))
    except (ConfigError, StartError) as exc:
        sys.exit(f"run: {exc}")


if __name__ == "__main__":
    main()
