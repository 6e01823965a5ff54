"""One payment's hostile data, or an output the broker refuses, on the real stack: the first
is dead-lettered and every other payment flows; the second ends the worker with a non-zero
status before its batch is committed, and a restart loses nothing (decision 0006)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from domain.machine import MAX_REGISTRATIONS
from pipeline.settings import Settings
from stack import launcher, proc
from streams.faust_app import EXIT_AGENT_FAILED
from testing.traffic import payments, requests
from tests.chaos.probes import FULL
from tests.integration.test_stream_semantics import assert_converged, send
from tests.integration.waiting import eventually

FLOOD = 7000 if FULL else 3000


async def dead_letters(ch: Any, reason: str) -> int:
    rows = ch.query(
        "SELECT count() FROM dead_letters WHERE reason LIKE {r:String}",
        parameters={"r": f"%{reason}%"},
    ).result_rows
    return int(rows[0][0])


def streams_alive(stack: launcher.StackInfo) -> bool:
    info = launcher.StackInfo.load(Path(stack.run_dir))
    assert info is not None
    return proc.alive(info.parts["streams"].pid)


async def test_a_flood_of_conflicting_registrations_for_one_payment_stops_nothing(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    victim = f"flood-{uuid.uuid4().hex[:12]}"
    refused_before = await dead_letters(ch, "checkout registrations")
    sem = asyncio.Semaphore(32)

    async def register(k: int) -> int:
        body = {
            "provider": "coinbase",
            "external_id": victim,
            "order_id": f"order-{k}",
            "amount": f"{k + 1}.00",
            "currency": "USDC",
        }
        async with sem:
            return (await api.post("/checkouts", json=body)).status_code

    codes = await asyncio.gather(*(register(k) for k in range(FLOOD)))
    assert set(codes) == {202}, f"registrations answered {sorted(set(codes))}"
    pays = payments(60, seed=909)
    await send(api, requests(pays, settings.providers, seed=909, now=time.time()))

    await assert_converged(pg, ch, pays)  # every other payment still goes through
    refused = await eventually(
        lambda: dead_letters(ch, "checkout registrations"),
        lambda n: n - refused_before >= FLOOD - 4 * MAX_REGISTRATIONS,
        timeout=120,
        what="the registrations past the bound as dead letters",
    )
    assert refused - refused_before <= FLOOD - MAX_REGISTRATIONS
    row = await pg.fetchrow(
        "SELECT version FROM transactions WHERE provider = 'coinbase' AND external_id = $1",
        victim,
    )
    assert row is not None and row["version"] < 4 * MAX_REGISTRATIONS
    assert streams_alive(stack)


async def set_max_message_bytes(bootstrap: str, topic: str, value: str | None) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {"max.message.bytes": value if value is not None else "1048588"}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
    finally:
        await admin.close()


def exit_status(pid: int) -> int | None:
    """The worker's exit status once it ended (the launcher ran in this process: its parent)."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done else None


async def test_a_refused_output_ends_the_worker_and_a_restart_loses_nothing(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    run = Path(stack.run_dir)
    info = launcher.StackInfo.load(run)
    assert info is not None
    pid = info.parts["streams"].pid
    topic = settings.topics.transitions
    await set_max_message_bytes(stack.kafka_bootstrap, topic, "64")  # every transition refused
    try:
        pays = payments(30, seed=919)
        await send(api, requests(pays, settings.providers, seed=919, now=time.time()))
        await eventually(
            lambda: asyncio.to_thread(lambda: not proc.alive(pid)),
            lambda gone: gone,
            timeout=90,
            what="the stream worker to exit",
        )
        assert exit_status(pid) in (EXIT_AGENT_FAILED, None)
        log = Path(info.parts["streams"].log).read_text(errors="replace")
        assert "the worker exits" in log
        landed = ch.query(
            "SELECT count() FROM payment_events WHERE external_id IN {ids:Array(String)}",
            parameters={"ids": [p.external_id for p in pays]},
        ).result_rows[0][0]
        assert landed == 0  # no transition went out: the worker stopped, it did not skip
    finally:
        await set_max_message_bytes(stack.kafka_bootstrap, topic, None)
    launcher.stop_part(run, "streams", signal.SIGKILL)  # reap what is left of it
    await asyncio.to_thread(launcher.start_part, run, "streams")
    await assert_converged(pg, ch, pays)
