"""Merchant notifications given up (dead letters, ``pipeline notify``) and the notifier's
metrics, on the real stack; receivers and notifier as in test_notify.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

from pipeline.settings import Settings
from stack import launcher
from tests.integration.notify_kit import Notifier, Receiver, endpoint_toml, send, whsec
from tests.integration.test_notify import FAST, pid, until
from tests.integration.waiting import eventually


def pipeline(n: Notifier, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**launcher.service_env(n.stack), "PIPELINE_CONFIG": str(n.config)}
    env["PIPELINE_RUN_DIR"] = n.stack.run_dir
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", "notify", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


async def test_given_up_deliveries_are_dead_lettered_listed_and_redriven(
    stack: launcher.StackInfo, api: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    fixed: set[str] = set()
    gone = Receiver([whsec("gone")], answer=lambda _i, _n: 200 if "gone" in fixed else 410)
    down = Receiver([whsec("down")], answer=lambda _i, _n: 200 if "down" in fixed else 503)
    for rx in (gone, down):
        await rx.start()
    toml = endpoint_toml(gone.url, gone.secrets) + endpoint_toml(down.url, down.secrets)
    n = Notifier(stack, tmp_path, toml, **{**FAST, "give_up_after_s": 3.0})
    await n.start()
    try:
        pay = pid()
        await send(api, settings, pay, "pending", "2026-11-01T10:00:00Z")
        await until(gone, 1, pay)
        await until(down, 2, pay)
        listed: list[dict[str, Any]] = []

        async def dead() -> list[dict[str, Any]]:
            nonlocal listed
            done = pipeline(n, "list", "--json")
            assert done.returncode == 0, done.stderr
            listed = [d for d in orjson.loads(done.stdout) if d["external_id"] == pay]
            return listed

        await eventually(dead, lambda d: len(d) == 2, 30, "two dead letters")
        reasons = {d["endpoint"]: d["reason"] for d in listed}
        assert reasons[gone.url] == "HTTP 410: permanent failure"
        assert reasons[down.url].startswith("gave up after ") and "HTTP 503" in reasons[down.url]
        await asyncio.sleep(1)
        assert len(gone.of(pay)) == 1, "a 4xx is never retried"
        tried = len(down.of(pay))
        fixed.update({"gone", "down"})
        done = pipeline(n, "redrive", "--all")
        assert done.returncode == 0 and "redrove" in done.stdout, done.stdout + done.stderr
        await until(gone, 2, pay)
        await until(down, tried + 1, pay)
        for rx in (gone, down):
            got = rx.of(pay)
            assert len({r.webhook_id for r in got}) == 1 and len({r.body for r in got}) == 1
            assert got[-1].answered == 200
    finally:
        n.kill()
        for rx in (gone, down):
            await rx.stop()


async def test_the_stack_notifier_serves_its_metrics_per_endpoint(
    stack: launcher.StackInfo, settings: Settings
) -> None:
    part = launcher.StackInfo.load(Path(stack.run_dir))
    assert part is not None and part.parts["notify"].port2, "the launcher gives it a port"
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"http://127.0.0.1:{part.parts['notify'].port2}/metrics")).text
    [demo] = settings.notify.endpoints
    for series in (
        f'pipeline_notify_attempts_total{{endpoint="{demo.url}",result="delivered"}}',
        f'pipeline_notify_attempts_total{{endpoint="{demo.url}",result="retry"}}',
        f'pipeline_notify_backlog{{endpoint="{demo.url}"}}',
        f'pipeline_notify_dead_letters_total{{endpoint="{demo.url}"}}',
    ):
        assert series in text, series
