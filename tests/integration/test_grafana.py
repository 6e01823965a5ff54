"""The provisioned Grafana dashboards ask real questions: every ClickHouse panel query runs on the
real ClickHouse over real pipeline data, every Prometheus panel names series the services
really export."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.settings import Settings
from stack import launcher
from testing.traffic import payments, requests
from tests.integration.test_stream_semantics import send
from tests.integration.waiting import eventually

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"


def targets(name: str, ds_type: str) -> list[tuple[str, dict[str, Any]]]:
    doc = json.loads((DASHBOARDS / name).read_text())
    return [
        (p["title"], t)
        for p in doc["panels"]
        for t in p["targets"]
        if t["datasource"]["type"] == ds_type
    ]


CH_TARGETS = targets("pipeline-analytics.json", "grafana-clickhouse-datasource")
PROM_TARGETS = targets("pipeline-services.json", "prometheus")


def expand_macros(sql: str) -> str:
    """What the ClickHouse plugin does with its macros, for a last-day time range."""
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)",
        r"(\1 >= now() - INTERVAL 1 DAY AND \1 <= now() + INTERVAL 1 MINUTE)",
        sql,
    )
    sql = sql.replace("$__fromTime", "(now() - INTERVAL 1 DAY)")
    return sql.replace("$__toTime", "now()")


@pytest.fixture(scope="module")
async def traffic(api: httpx.AsyncClient, ch: Any, settings: Settings) -> None:
    # provider times within the last day: the panels' time filter is on the event's own time
    pays = payments(36, seed=515, start=datetime.now(UTC) - timedelta(hours=25))
    await send(
        api, requests(pays, settings.providers, seed=515, duplicate_share=0.5, now=time.time())
    )
    r = await api.post("/webhooks/btcpay", content=b"{}", headers={"btcpay-sig": "sha256=00"})
    assert r.status_code == 401 and r.json()["detail"].startswith("signature rejected"), r.text
    ids = [p.external_id for p in pays]

    async def stored() -> int:
        return int(
            ch.query(
                "SELECT count() FROM payment_events WHERE external_id IN {ids:Array(String)}",
                parameters={"ids": ids},
            ).result_rows[0][0]
        )

    want = sum(len(p.events) for p in pays)
    await eventually(stored, lambda n: n >= want, what="the events in ClickHouse")


def test_the_dashboards_have_panels() -> None:
    assert len(CH_TARGETS) >= 8 and len(PROM_TARGETS) >= 10


@pytest.mark.parametrize(
    "target", [t for _, t in CH_TARGETS], ids=[title for title, _ in CH_TARGETS]
)
def test_clickhouse_panel_query_runs_on_real_data(
    target: dict[str, Any], traffic: None, ch: Any
) -> None:
    sql = expand_macros(target["rawSql"])
    assert "$__" not in sql
    result = ch.query(sql)
    if target["format"] == 0:  # time series: a time column first, then numbers
        assert result.result_rows, sql
        assert result.column_names[0] == "time"
    # tables may legitimately be empty (no refused transition in this traffic), never an error


async def test_prometheus_panels_name_series_the_services_export(
    traffic: None, stack: launcher.StackInfo
) -> None:
    urls = [
        f"http://127.0.0.1:{stack.parts[p].port2}/metrics" for p in ("ingest", "streams", "sinks")
    ]
    async with httpx.AsyncClient(timeout=10) as client:
        exported = "".join([(await client.get(u)).text for u in urls])
    names = set(re.findall(r"^(pipeline_\w+?)(?:\{| )", exported, re.M))
    for title, t in PROM_TARGETS:
        for used in re.findall(r"pipeline_\w+", t["expr"]):
            assert used in names, f"{title}: {used} is not exported"
