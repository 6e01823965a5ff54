"""The fault suite: the real stack broken on purpose under load from loadgen, then an
invariant check against a reference model computed from the accepted webhooks.

Every webhook answered 202 must be in the final state (Postgres status, history, and one
ClickHouse row per distinct event); loadgen retries 503s and broken connections as a provider
would, so in the end every webhook is accepted. ``make chaos`` (CHAOS_FULL=1) runs longer
loads and more faults than the CI subset; figures go to .run/chaos-faults.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bench.loadgen import Result, build, run
from pipeline.settings import Settings
from stack import launcher
from tests.integration.test_stream_semantics import assert_converged
from tests.integration.waiting import drained, pipeline_groups

FULL = os.environ.get("CHAOS_FULL", "") not in ("", "0")
PAYMENTS = 600 if FULL else 150
RATE = 120.0  # requests per second, open loop
FIGURES = Path(__file__).resolve().parents[2] / ".run" / "chaos-faults.json"


def groups(settings: Settings) -> dict[str, list[str]]:
    return pipeline_groups(settings.topics)


def record(name: str, **figures: Any) -> None:
    doc = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    doc[name] = figures
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(doc, indent=2))


async def under_load(
    stack: launcher.StackInfo, settings: Settings, seed: int, fault: Callable[[], Awaitable[int]]
) -> tuple[list[Any], Result, int]:
    """Run loadgen (retrying like a provider) while ``fault`` breaks something."""
    pays, reqs = build(PAYMENTS, settings.providers, {}, 0.2, 40, seed)
    load = asyncio.create_task(run(stack.ingest_url, reqs, RATE, 2000, retry_503=True))
    await asyncio.sleep(2.5)
    faults = await fault()
    res = await load
    assert res.codes.get(202, 0) == len(reqs), (
        f"not every webhook was accepted in the end: {res.summary()}"
    )
    return pays, res, faults


async def restart(run: Path, part: str, sig: int = signal.SIGTERM, down_s: float = 3.0) -> None:
    await asyncio.to_thread(launcher.stop_part, run, part, sig)
    await asyncio.sleep(down_s)
    await asyncio.to_thread(launcher.start_part, run, part)


async def verify(
    stack: launcher.StackInfo, pg: asyncpg.Pool, ch: Any, settings: Settings, pays: list[Any]
) -> None:
    await assert_converged(pg, ch, pays)
    await drained(stack.kafka_bootstrap, groups(settings), timeout=120)
    await assert_converged(pg, ch, pays)  # and still so once every consumer caught up


async def test_kafka_broker_restarted_during_load(
    stack: launcher.StackInfo, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    run = Path(stack.run_dir)

    async def fault() -> int:
        await restart(run, "kafka", down_s=4.0)
        return 1

    pays, res, n = await under_load(stack, settings, 1101, fault)
    # while the broker could not take a write, ingest said so (503) instead of a false 202
    assert res.retries > 0, "no request was refused while the broker was down"
    await verify(stack, pg, ch, settings, pays)
    record(
        "kafka broker restarted",
        faults=n,
        requests=res.sent,
        refused_503_or_dropped=res.retries,
        accepted=res.codes.get(202, 0),
        lost=0,
    )


async def test_stream_worker_sigkilled_repeatedly(
    stack: launcher.StackInfo, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    run = Path(stack.run_dir)
    kills = 4 if FULL else 2

    async def fault() -> int:
        for _ in range(kills):
            await restart(run, "streams", signal.SIGKILL, down_s=1.0)
            await asyncio.sleep(1.5)
        return kills

    pays, res, n = await under_load(stack, settings, 1202, fault)
    await verify(stack, pg, ch, settings, pays)
    record(
        "stream worker SIGKILL", faults=n, requests=res.sent, accepted=res.codes.get(202, 0), lost=0
    )


@pytest.mark.parametrize("part", ["postgres", "clickhouse"])
async def test_database_down_and_back_during_load(
    part: str, stack: launcher.StackInfo, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    run = Path(stack.run_dir)

    async def fault() -> int:
        await restart(run, part, down_s=5.0)
        return 1

    pays, res, n = await under_load(stack, settings, 1303 if part == "postgres" else 1404, fault)
    if part == "postgres":
        await pg.expire_connections()
    await verify(stack, pg, ch, settings, pays)
    record(
        f"{part} down and back", faults=n, requests=res.sent, accepted=res.codes.get(202, 0), lost=0
    )


async def test_ingest_restarted_during_load(
    stack: launcher.StackInfo, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    run = Path(stack.run_dir)

    async def fault() -> int:
        await restart(run, "ingest", down_s=1.0)
        return 1

    pays, res, n = await under_load(stack, settings, 1505, fault)
    assert res.retries > 0, "no request met the restart"
    await verify(stack, pg, ch, settings, pays)
    record(
        "ingest restarted",
        faults=n,
        requests=res.sent,
        retried=res.retries,
        accepted=res.codes.get(202, 0),
        lost=0,
    )
