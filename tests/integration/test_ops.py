"""The SRE command line on the real stack, through the real ``pipeline`` command."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaProducer

from pipeline.dlq import dead_letter
from pipeline.envelope import RawWebhook
from pipeline.settings import Settings
from pipeline.traffic import payments, requests
from pipeline.webhook_factory import SampleEvent, signed_request
from stack import launcher
from tests.integration.test_stream_semantics import assert_converged, send
from tests.integration.waiting import drained, eventually, pipeline_groups


def pipeline(stack: launcher.StackInfo, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPELINE_RUN_DIR": stack.run_dir}
    for k in [
        k
        for k in env
        if k.startswith("PIPELINE_") and k != "PIPELINE_RUN_DIR" and k != "PIPELINE_CONFIG"
    ]:
        del env[k]
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def groups(settings: Settings) -> dict[str, list[str]]:
    return pipeline_groups(settings.topics)


async def fingerprint(pg: asyncpg.Pool, ch: Any) -> tuple[Any, ...]:
    tx = await pg.fetch(
        "SELECT provider, external_id, status, amount, version, updated_at FROM transactions "
        "ORDER BY provider, external_id"
    )
    hist = await pg.fetchval("SELECT count(*) FROM transaction_events")
    digest = hashlib.sha256(repr([tuple(r) for r in tx]).encode()).hexdigest()
    events = ch.query("SELECT count(), uniqExact(event_id) FROM payment_events").result_rows[0]
    return digest, len(tx), hist, tuple(events)


async def test_replay_of_a_range_leaves_postgres_and_clickhouse_unchanged(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    pays = payments(40, seed=808)
    await send(api, requests(pays, settings.providers, seed=808, now=time.time()))
    await assert_converged(pg, ch, pays)
    await drained(stack.kafka_bootstrap, groups(settings))
    before = await fingerprint(pg, ch)

    dry = pipeline(
        stack,
        "replay",
        settings.topics.raw,
        "-p",
        "0",
        "-p",
        "1",
        "--from-offset",
        "0",
        "--dry-run",
    )
    assert dry.returncode == 0, dry.stderr
    assert "dry run: would replay" in dry.stdout
    whole = pipeline(stack, "replay", settings.topics.raw, "--from-time", "2000-01-01T00:00:00Z")
    assert whole.returncode == 0, whole.stderr
    replayed = int(whole.stdout.strip().splitlines()[-1].split()[1])
    assert replayed > 100
    await drained(stack.kafka_bootstrap, groups(settings))
    assert await fingerprint(pg, ch) == before


async def test_a_dead_letter_is_redriven_after_its_cause_is_fixed(
    stack: launcher.StackInfo, pg: asyncpg.Pool, settings: Settings
) -> None:
    # a good webhook that failed on its way (say the broker was unavailable for too long):
    # it sits on the DLQ; once the cause is gone, a redrive makes it land
    ext = f"dlq-{uuid.uuid4().hex[:8]}"
    ev = SampleEvent(
        "btcpay", ext, "completed", Decimal("5.00"), "BTC", datetime.now(UTC), f"evt-{ext}", "o"
    )
    body, _ = signed_request(ev, settings.providers, time.time())
    raw = RawWebhook(uuid.uuid4().hex, "btcpay", int(time.time() * 1000), body, {})
    record = dead_letter(
        stage="normalize",
        reason="KafkaTimeoutError: broker unavailable",
        topic=settings.topics.raw,
        partition=0,
        offset=10**9,
        key=raw.id.encode(),
        value=body,
        headers=raw.to_kafka_headers(),
        failed_at_ms=int(time.time() * 1000),
    )
    p = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await p.start()
    await p.send_and_wait(settings.topics.dlq, orjson.dumps(record), key=raw.id.encode())
    await p.stop()

    listed = pipeline(stack, "dlq", "list", "--json", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    assert record["id"] in {d["id"] for d in orjson.loads(listed.stdout)}
    shown = pipeline(stack, "dlq", "show", record["id"])
    assert shown.returncode == 0 and "broker unavailable" in shown.stdout and ext in shown.stdout
    assert await pg.fetchval("SELECT count(*) FROM transactions WHERE external_id = $1", ext) == 0

    redriven = pipeline(stack, "dlq", "redrive", record["id"])
    assert redriven.returncode == 0, redriven.stderr
    assert "redrove 1" in redriven.stdout

    async def status() -> Any:
        return await pg.fetchval("SELECT status FROM transactions WHERE external_id = $1", ext)

    await eventually(status, lambda s: s == "completed", what="the redriven payment in Postgres")


async def test_rebuild_from_the_raw_topic_matches_the_live_state(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    pays = payments(30, seed=909)
    await send(
        api, requests(pays, settings.providers, seed=909, duplicate_share=0.5, now=time.time())
    )
    await assert_converged(pg, ch, pays)
    await drained(stack.kafka_bootstrap, groups(settings))
    done = pipeline(stack, "rebuild", "--json")
    report = orjson.loads(done.stdout)
    assert done.returncode == 0, (done.stderr, report["differences"][:5])
    assert report["match"] and report["rebuilt"] == report["live"] >= 30


async def test_inspect_shows_every_stage_of_a_payment(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    [pay] = payments(1, seed=1010, providers=("coinbase",))
    await send(
        api, requests([pay], settings.providers, seed=1010, duplicate_share=1.0, now=time.time())
    )
    await assert_converged(pg, ch, [pay])
    await drained(stack.kafka_bootstrap, groups(settings))
    out = pipeline(stack, "inspect", "coinbase", pay.external_id, "--json")
    assert out.returncode == 0, out.stderr
    j = orjson.loads(out.stdout)
    n = len(pay.events)
    assert len(j["raw_webhooks"]) == 2 * n  # every delivery, redeliveries included
    assert len(j["events"]) == 2 * n and len(j["transitions"]) == 2 * n
    assert {t["outcome"] for t in j["transitions"]} == {"applied", "duplicate"}
    assert j["postgres"]["transaction"]["status"] == pay.expected_status
    assert len(j["postgres"]["history"]) == n
    assert len(j["clickhouse"]["payment_events"]) == n and len(j["clickhouse"]["ingest_log"]) >= n
    human = pipeline(stack, "inspect", "coinbase", pay.external_id)
    assert human.returncode == 0 and "raw webhooks in Kafka" in human.stdout


def test_errors_exit_non_zero_with_one_line(stack: launcher.StackInfo) -> None:
    for args in (
        ("dlq", "show", "no-such-id"),
        ("replay", "no.such.topic"),
        ("replay", "webhooks.raw", "--from-time", "yesterday"),
    ):
        done = pipeline(stack, *args)
        assert done.returncode == 1, args
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("pipeline "), (
            done.stderr
        )
