"""``make run``: the stack, a burst of realistic signed webhooks, and what landed where.

Starts the local stack, or reuses the running one (restarting only parts that are down), and
says which. Sends every provider's webhooks shuffled and with redeliveries, waits until the
stream worker and both sinks have committed up to the end of their topics (stack/drain.py),
then counts Postgres and ClickHouse once and prints a summary with latencies. Exits 0 exactly
when every webhook landed as expected; otherwise non-zero with one line on stderr.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from typing import Any

import asyncpg
import clickhouse_connect
import httpx
from rich.console import Console
from rich.table import Table

from pipeline.settings import ConfigError, Settings, load_settings, run_dir
from stack import demo_shop, launcher
from stack.cli import describe
from stack.drain import NotDrained, pipeline_groups, wait_drained
from stack.errors import StartError
from testing.traffic import PROVIDERS, Payment, Request, payments, requests

# long lines stay whole in a log; piped, the table keeps its headers (rich assumes 80 columns)
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)


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


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
        if len(values) > 1
        else values[0]
    )


async def landed(
    dsn: str, ch_url: str, pays: list[Payment]
) -> tuple[dict[tuple[str, str], str], Counter[str], Counter[str]]:
    """What Postgres and ClickHouse hold for these payments: each payment's status, and the
    distinct events per provider in each."""
    ids = [p.external_id for p in pays]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT provider, external_id, status FROM transactions "
            "WHERE external_id = ANY($1::text[])",
            ids,
        )
        pg_events = await conn.fetch(
            "SELECT provider, count(*) AS n FROM transaction_events "
            "WHERE external_id = ANY($1::text[]) GROUP BY provider",
            ids,
        )
    finally:
        await conn.close()
    ch = clickhouse_connect.get_client(dsn=ch_url)
    ch_events = ch.query(
        "SELECT provider, count() FROM payment_events FINAL "
        "WHERE external_id IN {ids:Array(String)} GROUP BY provider",
        parameters={"ids": ids},
    ).result_rows
    return (
        {(r["provider"], r["external_id"]): r["status"] for r in rows},
        Counter({str(r["provider"]): int(r["n"]) for r in pg_events}),
        Counter({str(prov): int(n) for prov, n in ch_events}),
    )


async def latencies(dsn: str, ch_url: str, ids: list[str]) -> tuple[list[float], Any]:
    conn = await asyncpg.connect(dsn)
    try:
        e2e = await conn.fetch(
            "SELECT extract(epoch FROM written_at - updated_at) AS s FROM transactions "
            "WHERE external_id = ANY($1::text[])",
            ids,
        )
    finally:
        await conn.close()
    ch = clickhouse_connect.get_client(dsn=ch_url)
    ch_lat = ch.query(
        "SELECT quantile(0.5)(dateDiff('millisecond', received_at, processed_at)), "
        "quantile(0.99)(dateDiff('millisecond', received_at, processed_at)) FROM payment_events "
        "WHERE external_id IN {ids:Array(String)}",
        parameters={"ids": ids},
    ).result_rows[0]
    return [float(r["s"]) for r in e2e], ch_lat


def landed_table(
    pays: list[Payment],
    reqs: list[Request],
    codes: Counter[tuple[str, int]],
    got: dict[tuple[str, str], str],
    pg_events: Counter[str],
    ch_events: Counter[str],
) -> Table:
    """Per provider: what was sent, accepted, and found in Postgres and ClickHouse."""
    table = Table(title="What landed where")
    for col in (
        "provider",
        "payments",
        "webhooks sent",
        "202",
        "Postgres rows right",
        "Postgres events",
        "ClickHouse events",
        "events expected",
    ):
        table.add_column(col, justify="right")
    for prov in PROVIDERS:
        mine = [p for p in pays if p.provider == prov]
        right = sum(1 for p in mine if got.get((prov, p.external_id)) == p.expected_status)
        table.add_row(
            prov,
            str(len(mine)),
            str(sum(1 for r in reqs if r.provider == prov)),
            str(codes.get((prov, 202), 0)),
            str(right),
            str(pg_events[prov]),
            str(ch_events[prov]),
            str(sum(len(p.events) for p in mine)),
        )
    return table


def describe_stack(report: launcher.UpReport) -> None:
    for i, line in enumerate(describe(report)):
        console.print(f"[bold]{line}[/]" if i == 0 else line, highlight=False)


async def print_figures(
    info: launcher.StackInfo,
    pays: list[Payment],
    codes: Counter[tuple[str, int]],
    lat: list[float],
    elapsed: float,
) -> None:
    """HTTP answers, rate, and latencies of the burst."""
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
    s, ch_lat = await latencies(
        info.postgres_dsn, info.clickhouse_url, [p.external_id for p in pays]
    )
    console.print(
        f"ingest -> Postgres row (last event): p50 {pct(s, 50) * 1000:.0f} ms, "
        f"p99 {pct(s, 99) * 1000:.0f} ms"
    )
    console.print(
        f"ingest -> processed (ClickHouse): p50 {ch_lat[0]:.0f} ms, p99 {ch_lat[1]:.0f} ms"
    )


async def main_async(settings: Settings, count: int) -> int:
    console.print(
        "The local stack (Kafka, Postgres, ClickHouse, ingest, streams, sinks, notify, dashboard):"
    )
    report = launcher.ensure_up(run_dir(), settings)
    describe_stack(report)
    info = report.info
    shop = await demo_shop.open_shop(settings, console.print)
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
    timeout = float(os.environ.get("DEMO_DRAIN_TIMEOUT_S", "120"))
    try:
        waited = await wait_drained(info.kafka_bootstrap, pipeline_groups(settings), timeout)
    except NotDrained as exc:
        if shop is not None:
            await shop.stop()
        return fail(f"the pipeline did not take in the burst: {exc}")
    console.print(
        f"Drained {waited:.2f} s after the last answer: the stream worker and both sinks "
        "committed up to the end offsets of their topics"
    )
    got, pg_events, ch_events = await landed(info.postgres_dsn, info.clickhouse_url, pays)

    console.print(landed_table(pays, reqs, codes, got, pg_events, ch_events))
    accepted = sum(n for (_, code), n in codes.items() if code == 202)
    await print_figures(info, pays, codes, lat, elapsed)
    ids = [p.external_id for p in pays]
    notified = await demo_shop.report(shop, info.postgres_dsn, ids, console.print, timeout)
    console.print(
        f"Stack still running: stop it with [bold]make down[/]. "
        f"Addresses in {run_dir() / 'stack.env'}"
    )
    if settings.api.tokens or settings.dashboard.token.get_secret_value():
        console.print(
            f"Dashboard: {info.dashboard_url}/dashboard/ (sign in with an [api] token)",
            markup=False,
        )
    console.print("One payment's journey: .venv/bin/pipeline inspect PROVIDER EXTERNAL_ID")
    events = sum(len(p.events) for p in pays)
    right = sum(1 for p in pays if got.get((p.provider, p.external_id)) == p.expected_status)
    pg_n, ch_n = sum(pg_events.values()), sum(ch_events.values())
    landed_all = accepted == len(reqs) and right == len(pays) and pg_n == events == ch_n
    if landed_all and notified:
        console.print(
            f"[green]every webhook landed: {right} payments in their expected status in "
            f"Postgres, {events} distinct events in Postgres and in ClickHouse[/]"
        )
        return 0
    return fail(
        f"not every webhook landed as expected: {accepted}/{len(reqs)} webhooks accepted, "
        f"{right}/{len(pays)} payments in their expected status in Postgres, "
        f"{pg_n}/{events} events in Postgres, {ch_n}/{events} in ClickHouse"
        + ("" if notified else "; the demo shop did not receive every notification")
    )


def fail(why: str) -> int:
    """The one line that says why the run failed (stderr), and the exit status."""
    print(f"run: {why}", file=sys.stderr)
    return 1


def main() -> None:
    try:
        settings = load_settings()
        count = int(os.environ.get("DEMO_PAYMENTS", "300"))
        sys.exit(asyncio.run(main_async(settings, count)))
    except ConfigError as exc:
        sys.exit(f"run: {exc}")
    except StartError as exc:
        sys.exit(f"run: {exc.part} failed to start: {exc.why} (its log: {run_dir()}/logs)")


if __name__ == "__main__":
    main()
