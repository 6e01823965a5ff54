"""The monitoring dashboard on the real stack (its own part, DASHBOARD_URL): its API answers
with what Postgres, ClickHouse and Kafka hold, only with a token, and a headless Chromium signs
in through the login form and draws every chart with data. Traffic goes to ingest."""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from pipeline.settings import Settings
from stack import launcher
from testing.traffic import payments, requests
from tests.integration.browser import sign_in_and_look
from tests.integration.test_stream_semantics import assert_converged, send
from tests.integration.waiting import drained, eventually, pipeline_groups

API = ("statuses", "throughput", "latency", "lag", "dead-letters")
CHARTS = ("statuses", "throughput", "latency", "lag", "dead-letters")
DAY_MIN = 1440  # the widest window the dashboard's API takes


def token(settings: Settings) -> str:
    return settings.dashboard.token.get_secret_value()


def auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings)}"}


async def get_json(dash: httpx.AsyncClient, settings: Settings, path: str) -> Any:
    r = await dash.get(f"/dashboard/api/{path}", headers=auth(settings))
    assert r.status_code == 200, r.text
    return r.json()


def raw_end(lag: dict[str, Any], topic: str) -> int:
    return sum(
        p["end"]
        for p in lag["partitions"]
        if p["group"] == "checkout-pipeline" and p["topic"] == topic
    )


def counts(statuses: dict[str, Any]) -> Counter[str]:
    return Counter({s["status"]: s["count"] for s in statuses["by_status"]})


@pytest.fixture(scope="module")
async def traffic(
    stack: launcher.StackInfo,
    api: httpx.AsyncClient,
    dash: httpx.AsyncClient,
    pg: asyncpg.Pool,
    ch: Any,
    settings: Settings,
) -> dict[str, Any]:
    """Real traffic with redeliveries and one dead letter; what the dashboard said before it
    (once whatever earlier tests sent had landed) and how far webhooks.raw moved."""
    assert token(settings), "config/local.toml must set [dashboard] token"
    await drained(stack.kafka_bootstrap, pipeline_groups(settings.topics))
    before = await get_json(dash, settings, "lag")
    statuses_before = await get_json(dash, settings, "statuses")
    dead_before = await get_json(dash, settings, "dead-letters?limit=50")
    throughput_before = await get_json(dash, settings, f"throughput?minutes={DAY_MIN}")
    pays = payments(48, seed=929)
    reqs = requests(pays, settings.providers, seed=929, duplicate_share=0.3, now=time.time())
    await send(api, reqs)
    body = b'"not an object"'  # authentic but unreadable: 400 and a dead letter
    secret = settings.providers.coinbase.secrets[0].get_secret_value().encode()
    sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
    r = await api.post(
        "/webhooks/coinbase",
        content=body,
        headers={"content-type": "application/json", "x-cc-webhook-signature": sig},
    )
    assert r.status_code == 400 and "kept as dead letter" in r.json()["detail"], r.text
    await assert_converged(pg, ch, pays)
    await drained(stack.kafka_bootstrap, pipeline_groups(settings.topics))
    return {
        "requests": len(reqs),
        "raw_end_before": raw_end(before, settings.topics.raw),
        "payments": pays,
        "statuses_before": statuses_before,
        "dead_letters_before": dead_before["total"],
        "throughput_before": throughput_before,
    }


@pytest.mark.parametrize("path", API)
async def test_api_without_or_with_a_wrong_token_is_401(
    dash: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    url = f"/dashboard/api/{path}"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token(settings)}):
        r = await dash.get(url, headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["detail"] == "dashboard token missing or wrong"
        assert r.headers["www-authenticate"].startswith("Bearer")
    # never from the address
    r = await dash.get(url, params={"token": token(settings)})
    assert r.status_code == 401


async def test_page_takes_the_token_as_header_else_goes_to_the_login_form(
    dash: httpx.AsyncClient, settings: Settings
) -> None:
    for params in ({}, {"token": "wrong"}, {"token": token(settings)}):
        r = await dash.get("/dashboard/", params=params, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard/login", params
    for r in (await dash.get("/dashboard/", headers=auth(settings)),):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert 'id="chart-throughput"' in r.text
    js = await dash.get("/dashboard/static/charts.js")  # holds no data: no token needed
    assert js.status_code == 200 and "data-points" in js.text


async def test_statuses_count_exactly_the_payments_sent(
    traffic: dict[str, Any], dash: httpx.AsyncClient, settings: Settings
) -> None:
    """The expectation is the traffic's own: each new payment once, in the status its chain
    ends in (redeliveries and the dead letter add no payment)."""
    before, got = traffic["statuses_before"], await get_json(dash, settings, "statuses")
    sent = Counter(p.expected_status for p in traffic["payments"])
    moved = counts(got)
    moved.subtract(counts(before))
    assert {s: n for s, n in moved.items() if n} == dict(sent)
    assert got["total"] - before["total"] == len(traffic["payments"]) == 48


def total(series: list[list[int]]) -> int:
    return sum(n for _, n in series)


async def test_throughput_counts_the_traffic_sent_and_latency_comes_from_clickhouse(
    traffic: dict[str, Any], dash: httpx.AsyncClient, settings: Settings
) -> None:
    """Over the last day (no earlier delivery leaves the window meanwhile): the traffic's
    distinct events once each, and every delivery, redeliveries and the unreadable one too."""
    before = traffic["throughput_before"]
    distinct = sum(len(p.events) for p in traffic["payments"])

    async def throughput() -> Any:
        return await get_json(dash, settings, f"throughput?minutes={DAY_MIN}")

    got = await eventually(
        throughput,
        lambda g: total(g["events"]) - total(before["events"]) >= distinct,
        what="every distinct event in the throughput",
    )
    assert total(got["events"]) - total(before["events"]) == distinct
    assert total(got["deliveries"]) - total(before["deliveries"]) == traffic["requests"] + 1
    got = await get_json(dash, settings, "throughput?minutes=60")
    minutes = [t for t, _ in got["deliveries"]]
    assert minutes == sorted(minutes) and all(t % 60_000 == 0 for t in minutes)
    assert (time.time() * 1000) - minutes[-1] < 5 * 60_000

    lat = await get_json(dash, settings, "latency?minutes=60")
    w = lat["window"]
    assert w["deliveries"] >= traffic["requests"]
    assert 0 <= w["p50"] <= w["p90"] <= w["p99"] < 60_000
    assert sum(p["deliveries"] for p in lat["points"]) == w["deliveries"]
    bad = await dash.get("/dashboard/api/latency?minutes=0", headers=auth(settings))
    assert bad.status_code == 400 and bad.json()["detail"] and "minutes" in bad.text, bad.text


async def test_lag_covers_every_group_and_partition_and_drains(
    traffic: dict[str, Any], dash: httpx.AsyncClient, settings: Settings
) -> None:
    t = settings.topics
    expected = {
        "checkout-pipeline": {t.raw},
        "sink-postgres": {t.state, t.transitions},
        "sink-clickhouse": {t.transitions, t.dlq},
    }
    lag = await get_json(dash, settings, "lag")
    for group, topics in expected.items():
        seen = {(p["topic"], p["partition"]) for p in lag["partitions"] if p["group"] == group}
        assert seen == {(tp, n) for tp in topics for n in range(t.partitions)}, group
    # every accepted webhook is one more record on webhooks.raw
    assert raw_end(lag, t.raw) - traffic["raw_end_before"] == traffic["requests"]

    async def totals() -> dict[str, int]:
        body = await get_json(dash, settings, "lag")
        return dict(body["total_by_group"])

    drained = await eventually(
        totals, lambda g: set(g) == set(expected) and not any(g.values()), what="lag drained"
    )
    assert drained == dict.fromkeys(expected, 0)


async def test_dead_letters_show_the_ingest_rejection(
    traffic: dict[str, Any], dash: httpx.AsyncClient, settings: Settings
) -> None:
    async def dead() -> Any:
        return await get_json(dash, settings, "dead-letters?limit=50")

    got = await eventually(
        dead,
        lambda d: any(r["reason"] == "body is not a JSON object" for r in d["recent"]),
        what="the unreadable webhook among the recent dead letters",
    )
    # the one unreadable webhook of the traffic is the one dead letter more
    assert got["total"] == traffic["dead_letters_before"] + 1
    assert got["total"] == sum(s["count"] for s in got["by_stage"])
    assert "ingest" in {s["stage"] for s in got["by_stage"]}
    row = next(r for r in got["recent"] if r["reason"] == "body is not a JSON object")
    assert row["stage"] == "ingest" and row["provider"] == "coinbase"


async def test_headless_chromium_signs_in_and_draws_every_chart_with_data(
    traffic: dict[str, Any],
    stack: launcher.StackInfo,
    dash: httpx.AsyncClient,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Through the login form, as a person would: the session cookie is HttpOnly (the page's
    script cannot read it) and no token ever appears in the address."""
    seen = await sign_in_and_look(stack.dashboard_url, token(settings), tmp_path / "profile")
    assert seen.url == f"{stack.dashboard_url}/dashboard/", seen.url
    assert seen.script_cookies == "", seen.script_cookies
    png = seen.png
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1400, 1000)
    assert len(png) > 40_000  # a blank or error page compresses to a few kB

    dom = seen.dom
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    assert 'data-state="ready"' in body.group(1) and 'data-errors="0"' in body.group(1)
    charts = {
        m["name"]: (int(m["points"]), float(m["total"]))
        for m in re.finditer(
            r'data-chart="(?P<name>[^"]+)" data-points="(?P<points>\d+)" '
            r'data-total="(?P<total>[\d.]+)"',
            dom,
        )
    }
    assert set(charts) == set(CHARTS), charts
    assert all(points > 0 for points, _ in charts.values()), charts
    statuses = await get_json(dash, settings, "statuses")
    assert charts["statuses"] == (len(statuses["by_status"]), statuses["total"])
    for name in ("throughput", "latency", "dead-letters"):
        assert charts[name][1] > 0, name
    assert charts["lag"][0] == 5 * settings.topics.partitions  # five (group, topic) pairs
