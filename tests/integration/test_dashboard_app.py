"""The dashboard as a part of its own on the real stack (issue 17 item 3, decision 0070): up
on its own port and process, in ``stack.env`` and ``make status``; a person signs in and reads
its data; ingest answers 404 under ``/dashboard``, and only the dashboard's process talks to
ClickHouse when the dashboard is read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import psutil
from dotenv import dotenv_values

from pipeline.settings import Settings
from stack import launcher, proc, services


def peer_ports(pid: int) -> set[int]:
    """The remote ports of the TCP sockets that process ``pid`` holds."""
    return {c.raddr.port for c in psutil.Process(pid).net_connections("tcp") if c.raddr}


def current_parts(stack: launcher.StackInfo) -> dict[str, launcher.Part]:
    """The parts as they run now: another test may have restarted one (new pid)."""
    now = launcher.StackInfo.load(Path(stack.run_dir))
    assert now is not None, "the stack is down"
    return now.parts


def test_the_dashboard_is_a_part_of_its_own(stack: launcher.StackInfo) -> None:
    parts = current_parts(stack)
    dash, ingest = parts["dashboard"], parts["ingest"]
    assert proc.alive(dash.pid) and dash.pid != ingest.pid
    assert stack.dashboard_url == f"http://127.0.0.1:{dash.port}"
    assert dash.port != int(stack.ingest_url.rsplit(":", 1)[1])
    env = dotenv_values(Path(stack.run_dir) / "stack.env")
    assert env["DASHBOARD_URL"] == stack.dashboard_url
    assert services.http_ok(f"{stack.dashboard_url}/health")
    status = subprocess.run(
        [sys.executable, "-m", "stack.cli", "status", "--run-dir", stack.run_dir],
        capture_output=True,
        text=True,
        cwd=services.REPO,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    [row] = [line for line in status.stdout.splitlines() if line.startswith("dashboard ")]
    assert " up " in row and row.endswith(f"127.0.0.1:{dash.port}/dashboard/"), row


async def test_a_person_signs_in_and_reads_the_data(
    dash: httpx.AsyncClient, pg: asyncpg.Pool, settings: Settings
) -> None:
    """Through the login form, as a browser: the cookie then opens the data endpoint, whose
    count by status is Postgres' own."""
    token = settings.dashboard.token.get_secret_value()
    async with httpx.AsyncClient(base_url=str(dash.base_url), timeout=10) as browser:
        before = await browser.get("/dashboard/api/statuses")
        assert before.status_code == 401 and before.json()["detail"]
        r = await browser.post("/dashboard/login", data={"token": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard/", r.text
        assert browser.cookies.get("pipeline_dashboard")
        got = await browser.get("/dashboard/api/statuses")
        rows = await pg.fetch("SELECT status, count(*) AS n FROM transactions GROUP BY status")
    assert got.status_code == 200, got.text
    body = got.json()
    assert {s["status"]: s["count"] for s in body["by_status"]} == {
        r["status"]: r["n"] for r in rows
    }
    assert body["total"] == sum(r["n"] for r in rows)


async def test_ingest_serves_no_dashboard(api: httpx.AsyncClient, settings: Settings) -> None:
    token = settings.dashboard.token.get_secret_value()
    for path in ("/dashboard/", "/dashboard/login", "/dashboard/api/statuses"):
        r = await api.get(path, headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 404, (path, r.status_code)
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["detail"], r.text
    login = await api.post("/dashboard/login", data={"token": token}, follow_redirects=False)
    assert login.status_code in (404, 405) and "set-cookie" not in login.headers


async def test_only_the_dashboard_process_talks_to_clickhouse(
    stack: launcher.StackInfo, dash: httpx.AsyncClient, settings: Settings
) -> None:
    """Reading the dashboard's ClickHouse panels opens connections from its own process and
    none from ingest's: the reads never share ingest's event loop."""
    auth = {"authorization": f"Bearer {settings.dashboard.token.get_secret_value()}"}
    parts = current_parts(stack)
    ch_port = parts["clickhouse"].port
    for path in ("throughput", "latency", "dead-letters"):
        r = await dash.get(f"/dashboard/api/{path}", headers=auth)
        assert r.status_code == 200, r.text
        assert ch_port in peer_ports(parts["dashboard"].pid), path
    assert ch_port not in peer_ports(parts["ingest"].pid)
