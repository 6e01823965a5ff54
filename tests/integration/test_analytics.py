"""Analytics on the real ClickHouse, over real pipeline data: every query of docs/analytics.md
runs and answers; ClickHouse's statuses, amounts and completed volume per currency equal
Postgres' for the same payments, for every provider; a duplicate row moves no view; refused
transitions that a later event resolved are told apart from real anomalies."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from pipeline.settings import Settings
from testing.traffic import PROVIDERS, Payment, payments, requests
from testing.webhooks import SampleEvent, signed_request
from tests.integration.test_stream_semantics import send
from tests.integration.waiting import eventually

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
#: provider-timed payments of this module settle on days no other test uses
START = datetime(2031, 3, 1, tzinfo=UTC)
SETTLED = ("completed", "overpaid")


def test_the_doc_has_queries() -> None:
    assert len(QUERIES) >= 10


async def post(api: httpx.AsyncClient, ev: SampleEvent, settings: Settings) -> None:
    body, headers = signed_request(ev, settings.providers, time.time())
    r = await api.post(f"/webhooks/{ev.provider}", content=body, headers=headers)
    assert r.status_code == 202, r.text


def chain(ext: str, *steps: tuple[str, int]) -> list[SampleEvent]:
    """Events of one ``standard`` payment: (status, minutes after now - 1 h)."""
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return [
        SampleEvent(
            "standard",
            ext,
            status,
            Decimal("25.00"),
            "USDC",
            t0 + timedelta(minutes=m),
            f"evt-{ext}-{status}",
            f"o-{ext}",
        )
        for status, m in steps
    ]


def rows(ch: Any, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    return list(ch.query(sql, parameters=params).result_rows)


class Traffic:
    def __init__(self, pays: list[Payment], resolved: str, anomaly: str, late: str) -> None:
        self.pays, self.resolved, self.anomaly, self.late = pays, resolved, anomaly, late

    @property
    def ids(self) -> list[str]:
        return [p.external_id for p in self.pays]


async def send_in_order(
    api: httpx.AsyncClient, ch: Any, settings: Settings, events: list[SampleEvent]
) -> None:
    """One at a time, each stored in ClickHouse before the next is sent: arrival order."""
    for ev in events:
        await post(api, ev, settings)
        await eventually(
            lambda ev=ev: asyncio.to_thread(
                rows,
                ch,
                "SELECT count() FROM payment_events WHERE external_id = {e:String} "
                "AND status = {s:String}",
                e=ev.external_id,
                s=ev.status,
            ),
            lambda r: r[0][0] >= 1,
            what=f"{ev.status} of {ev.external_id} in ClickHouse",
        )


@pytest.fixture(scope="module")
async def traffic(api: httpx.AsyncClient, ch: Any, pg: asyncpg.Pool, settings: Settings) -> Traffic:
    pays = payments(72, seed=404, start=START)
    await send(api, requests(pays, settings.providers, seed=404, duplicate_share=0.5))
    # an authentic but unreadable webhook: answered 400 and kept as a dead letter
    body = b"[1, 2, 3]"
    secret = settings.providers.coinbase.secrets[0].get_secret_value().encode()
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    r = await api.post("/webhooks/coinbase", content=body, headers={"x-cc-webhook-signature": sig})
    assert r.status_code == 400 and "kept as dead letter" in r.json()["detail"], r.text
    # an early refund, refused while pending, applied once the (earlier) completion arrives
    resolved = f"ana-resolved-{time.time_ns()}"
    pending, completed, refunded = chain(
        resolved, ("pending", 0), ("completed", 10), ("refunded", 20)
    )
    await send_in_order(api, ch, settings, [pending, refunded, completed])
    # a completion after the cancellation: refused for good, a real anomaly
    anomaly = f"ana-anomaly-{time.time_ns()}"
    await send_in_order(api, ch, settings, chain(anomaly, ("canceled", 0), ("completed", 5)))
    # paid after expiry: applied and flagged late
    late = f"ana-late-{time.time_ns()}"
    await send_in_order(api, ch, settings, chain(late, ("expired", 0), ("completed", 5)))

    want = {p.external_id: p.expected_status for p in pays}

    async def pg_statuses() -> dict[str, str]:
        got = await pg.fetch(
            "SELECT external_id, status FROM transactions WHERE external_id = ANY($1::text[])",
            list(want),
        )
        return {r["external_id"]: r["status"] for r in got}

    def ch_statuses() -> dict[str, str]:
        got = rows(
            ch,
            "SELECT external_id, status FROM payment_summary "
            "WHERE external_id IN {ids:Array(String)}",
            ids=list(want),
        )
        return dict(got)

    await eventually(pg_statuses, lambda g: g == want, timeout=120, what="Postgres converged")
    await eventually(
        lambda: asyncio.to_thread(ch_statuses), lambda g: g == want, what="ClickHouse converged"
    )
    await eventually(
        lambda: asyncio.to_thread(
            rows, ch, "SELECT count() FROM dead_letters WHERE stage = 'ingest'"
        ),
        lambda r: r[0][0] >= 1,
        what="the ingest dead letter in ClickHouse",
    )
    return Traffic(pays, resolved, anomaly, late)


@pytest.mark.parametrize("sql", QUERIES, ids=[f"q{i}" for i in range(len(QUERIES))])
def test_analytics_query_runs_and_answers(sql: str, traffic: Traffic, ch: Any) -> None:
    assert rows(ch, sql), f"no rows for:\n{sql}"


async def pg_payments(pg: asyncpg.Pool, ids: list[str]) -> dict[tuple[str, str], Any]:
    got = await pg.fetch(
        "SELECT provider, external_id, status, amount, currency FROM transactions "
        "WHERE external_id = ANY($1::text[])",
        ids,
    )
    return {
        (r["provider"], r["external_id"]): (r["status"], r["amount"], r["currency"]) for r in got
    }


async def test_each_payment_has_the_same_status_amount_and_currency_as_in_postgres(
    traffic: Traffic, ch: Any, pg: asyncpg.Pool
) -> None:
    want = await pg_payments(pg, traffic.ids)
    got = {
        (p, e): (s, a, c)
        for p, e, s, a, c in rows(
            ch,
            "SELECT provider, external_id, status, amount, currency FROM payment_summary "
            "WHERE external_id IN {ids:Array(String)}",
            ids=traffic.ids,
        )
    }
    assert got == want
    assert {p for p, _ in got} == set(PROVIDERS)


def volumes(items: list[tuple[str, str, str, Decimal]]) -> dict[tuple[str, str], Any]:
    """(provider, currency) -> [payments, volume] of the settled ones."""
    out: dict[tuple[str, str], Any] = defaultdict(lambda: [0, Decimal(0)])
    for provider, status, currency, amount in items:
        if status in SETTLED:
            out[provider, currency][0] += 1
            out[provider, currency][1] += amount
    return dict(out)


async def test_completed_volume_per_currency_equals_postgres_for_every_provider(
    traffic: Traffic, ch: Any, pg: asyncpg.Pool
) -> None:
    mine = await pg_payments(pg, traffic.ids)
    want = volumes([(p, s, c, a) for (p, _), (s, a, c) in mine.items()])
    assert {p for p, _ in want} == set(PROVIDERS), "every provider settles some payment"
    # provider-timed payments: exactly this module's, on their own days
    days = [START.date(), (START + timedelta(days=1)).date()]
    got = {
        (p, c): [n, v]
        for p, c, n, v in rows(
            ch,
            "SELECT provider, currency, sum(payments), sum(volume) FROM volume_per_currency "
            "WHERE day IN {days:Array(Date)} GROUP BY provider, currency HAVING sum(payments) > 0",
            days=days,
        )
    }
    assert got == {k: v for k, v in want.items() if k[0] != "coinpayments"}

    # CoinPayments is dated by receipt (today, shared with other tests): the whole store, once
    # whatever other tests sent has landed in both
    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        everything = await pg.fetch(
            "SELECT currency, count(*) AS n, sum(amount) AS v FROM transactions "
            "WHERE provider = 'coinpayments' AND status IN ('completed', 'overpaid') "
            "GROUP BY currency"
        )
        coin = rows(
            ch,
            "SELECT currency, sum(payments), sum(volume) FROM volume_per_currency "
            "WHERE provider = 'coinpayments' GROUP BY currency HAVING sum(payments) > 0",
        )
        return (
            {c: [n, v] for c, n, v in coin},
            {r["currency"]: [r["n"], r["v"]] for r in everything},
        )

    _, want_coin = await eventually(
        both, lambda pair: pair[0] == pair[1], what="CoinPayments volume as in Postgres"
    )
    assert want_coin, "CoinPayments settles some payment"
    assert {
        r[1] for r in rows(ch, "SELECT DISTINCT provider, time_base FROM volume_per_currency")
    } == {"provider", "receipt"}


async def test_gross_minus_refunded_is_net_and_refunds_are_postgres_refunds(
    traffic: Traffic, ch: Any, pg: asyncpg.Pool
) -> None:
    refunded = await pg.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(amount), 0) AS v FROM transactions "
        "WHERE external_id = ANY($1::text[]) AND status = 'refunded'",
        traffic.ids,
    )
    assert refunded["n"] > 0, "the traffic refunds some payments"
    ((gp, gv, rp, rv, np_, nv),) = rows(
        ch,
        "SELECT sum(gross_payments), sum(gross_volume), sum(refunded_payments), "
        "sum(refunded_volume), sum(payments), sum(volume) FROM volume_per_currency "
        "WHERE day IN {days:Array(Date)}",
        days=[START.date(), (START + timedelta(days=1)).date()],
    )
    assert gp - rp == np_ and gv - rv == nv
    pg_ref = await pg.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(amount), 0) AS v FROM transactions "
        "WHERE external_id = ANY($1::text[]) AND status = 'refunded' "
        "AND provider <> 'coinpayments'",
        traffic.ids,
    )
    assert (rp, rv) == (pg_ref["n"], pg_ref["v"])


def test_refused_transitions_resolved_later_are_told_apart_from_anomalies(
    traffic: Traffic, ch: Any
) -> None:
    got = {
        e: (target, note, resolved)
        for e, target, note, resolved in rows(
            ch,
            "SELECT external_id, target, note, resolved FROM refused_transitions "
            "WHERE external_id IN {ids:Array(String)}",
            ids=[traffic.resolved, traffic.anomaly, traffic.late],
        )
    }
    assert got == {
        traffic.resolved: ("refunded", "impossible transition pending -> refunded", True),
        traffic.anomaly: ("completed", "impossible transition canceled -> completed", False),
    }
    ((status,),) = rows(
        ch,
        "SELECT status FROM payment_summary WHERE external_id = {e:String}",
        e=traffic.resolved,
    )
    assert status == "refunded"
    late = rows(
        ch,
        "SELECT note FROM payment_events FINAL WHERE external_id = {e:String} AND applied "
        "AND note LIKE 'late payment%'",
        e=traffic.late,
    )
    assert late == [("late payment after expiry",)]


def view_snapshot(ch: Any) -> dict[str, list[tuple[Any, ...]]]:
    views = [
        name
        for (name,) in rows(
            ch,
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND engine = 'View' AND name != 'stuck_payments' ORDER BY name",  # parameterized
        )
    ]
    return {v: rows(ch, f"SELECT * FROM {v} ORDER BY ALL") for v in views}


async def test_a_duplicate_row_moves_no_view(traffic: Traffic, ch: Any) -> None:
    """What a crash between insert and offset commit leaves (the same rows again), and what a
    re-sent transition could leave (the same event, processed later), in every source table."""
    before = await eventually(
        lambda: asyncio.to_thread(lambda: (view_snapshot(ch), view_snapshot(ch))),
        lambda pair: pair[0] == pair[1],
        what="views at rest",
    )
    snapshot = before[0]
    assert {
        "volume_per_currency",
        "events_per_minute",
        "latency_per_minute",
        "payment_summary",
        "refused_transitions",
    } <= set(snapshot)
    ids = [traffic.resolved, traffic.anomaly, traffic.late, *traffic.ids[:12]]
    events = "external_id IN {ids:Array(String)}"
    # no background merge may collapse the copies before the views are read
    for table in ("payment_events", "ingest_log", "dead_letters"):
        ch.command(f"SYSTEM STOP MERGES {table}")
    try:
        check_views_unmoved(ch, snapshot, ids, events)
    finally:
        for table in ("payment_events", "ingest_log", "dead_letters"):
            ch.command(f"SYSTEM START MERGES {table}")


def check_views_unmoved(ch: Any, snapshot: dict[str, Any], ids: list[str], events: str) -> None:
    ch.command(
        f"INSERT INTO payment_events SELECT * FROM payment_events WHERE {events}",
        parameters={"ids": ids},
    )
    ch.command(
        "INSERT INTO payment_events SELECT * REPLACE (processed_at + INTERVAL 5 SECOND AS "
        f"processed_at, concat(raw_id, '-again') AS raw_id) FROM payment_events WHERE {events}",
        parameters={"ids": ids},
    )
    ch.command(
        "INSERT INTO ingest_log SELECT * FROM ingest_log WHERE event_id IN "
        f"(SELECT event_id FROM payment_events WHERE {events})",
        parameters={"ids": ids},
    )
    ch.command("INSERT INTO dead_letters SELECT * FROM dead_letters")
    doubled = rows(
        ch, f"SELECT count() > uniqExact(event_id) FROM payment_events WHERE {events}", ids=ids
    )
    assert doubled == [(True,)], "the duplicates are really stored"
    after = view_snapshot(ch)
    for name, want in snapshot.items():
        assert after[name] == want, f"{name} moved by a duplicate row"
