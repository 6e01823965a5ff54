"""The SRE command line on the real stack, through the real ``pipeline`` command."""

from __future__ import annotations

import base64
import hashlib
import os
import re
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
from aiokafka import AIOKafkaProducer, ConsumerRecord

from domain.dlq import dead_letter
from domain.records import RawWebhook, encode
from ops import kafka_io
from pipeline.settings import Settings
from sinks.clickhouse import ClickHouseSink
from stack import launcher
from testing.traffic import payments, requests
from testing.webhooks import SampleEvent, signed_request
from tests.integration.test_stream_semantics import assert_converged, send
from tests.integration.waiting import drained, eventually, pipeline_groups


def pipeline(
    stack: launcher.StackInfo, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command, in a fresh process, finding the test stack by its run folder."""
    outer = {**os.environ, "PIPELINE_RUN_DIR": stack.run_dir}
    for k in [
        k
        for k in outer
        if k.startswith("PIPELINE_") and k != "PIPELINE_RUN_DIR" and k != "PIPELINE_CONFIG"
    ]:
        del outer[k]
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *args],
        capture_output=True,
        text=True,
        env={**outer, **(env or {})},
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


async def test_republish_of_a_range_leaves_postgres_and_clickhouse_unchanged(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    pays = payments(40, seed=808)
    await send(api, requests(pays, settings.providers, seed=808, now=time.time()))
    await assert_converged(pg, ch, pays)
    await drained(stack.kafka_bootstrap, groups(settings))
    before = await fingerprint(pg, ch)

    dry = pipeline(
        stack,
        "republish",
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
    assert "dry run: would republish" in dry.stdout
    whole = pipeline(stack, "republish", settings.topics.raw, "--from-time", "2000-01-01T00:00:00Z")
    assert whole.returncode == 0, whole.stderr
    sent = int(whole.stdout.strip().splitlines()[-1].split()[1])
    assert sent > 100
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
    await p.send_and_wait(settings.topics.dlq, encode(record), key=raw.id.encode())
    await p.stop()

    listed = pipeline(stack, "dlq", "list", "--json", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr
    assert record.id in {d["id"] for d in orjson.loads(listed.stdout)}
    shown = pipeline(stack, "dlq", "show", record.id)
    assert shown.returncode == 0 and "broker unavailable" in shown.stdout and ext in shown.stdout
    assert await pg.fetchval("SELECT count(*) FROM transactions WHERE external_id = $1", ext) == 0

    redriven = pipeline(stack, "dlq", "redrive", record.id)
    assert redriven.returncode == 0, redriven.stderr
    assert "redrove 1" in redriven.stdout

    async def status() -> Any:
        return await pg.fetchval("SELECT status FROM transactions WHERE external_id = $1", ext)

    await eventually(status, lambda s: s == "completed", what="the redriven payment in Postgres")


async def scratch_databases(pg: asyncpg.Pool) -> list[str]:
    rows = await pg.fetch("SELECT datname FROM pg_database WHERE datname LIKE '%rebuild%'")
    return [r["datname"] for r in rows]


async def test_rebuild_from_the_raw_topic_matches_live_postgres_and_clickhouse(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    pays = payments(30, seed=939)
    await send(
        api, requests(pays, settings.providers, seed=939, duplicate_share=0.5, now=time.time())
    )
    await assert_converged(pg, ch, pays)
    await drained(stack.kafka_bootstrap, groups(settings))  # every sink wrote, then committed
    done = pipeline(stack, "rebuild", "--json")
    report = orjson.loads(done.stdout)
    assert done.returncode == 0, (done.stderr, report["differences"][:5])
    assert report["match"] and report["rebuilt"] == report["live"] >= 30
    n_events = ch.query("SELECT count() FROM payment_events FINAL").result_rows[0][0]
    assert report["events_rebuilt"] == report["events_live"] == report["events_matched"] == n_events
    assert await scratch_databases(pg) == []  # removed after a match

    # a payment that live ClickHouse lost is found: the comparison covers ClickHouse
    lost = pays[0].external_id
    ch.command(
        "ALTER TABLE payment_events DELETE WHERE external_id = {x:String} "
        "SETTINGS mutations_sync = 1",
        parameters={"x": lost},
    )
    try:
        differs = pipeline(stack, "rebuild", "--json")
        report = orjson.loads(differs.stdout)
        assert differs.returncode == 2 and not report["match"]
        assert report["differences"] and all(
            d.startswith("clickhouse ") and lost in d for d in report["differences"]
        ), report["differences"][:3]
        assert await scratch_databases(pg) == []  # removed after a mismatch
    finally:  # put the rows back: the same transitions again, from the topic
        restore = ClickHouseSink(stack.clickhouse_url, "default", "default", "", "dlq")
        await restore.start()
        found = await transitions_of(stack, settings, pays[0])
        await restore.write([restore.decode(r) for r in found])
        await restore.close()

    # a failure half-way (ClickHouse unreachable) still removes the scratch database
    broken = pipeline(stack, "rebuild", env={"PIPELINE_CLICKHOUSE__URL": "http://127.0.0.1:9"})
    assert broken.returncode == 1 and "ClickHouse unreachable" in broken.stderr, broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1
    assert await scratch_databases(pg) == []


async def transitions_of(
    stack: launcher.StackInfo, settings: Settings, pay: Any
) -> list[ConsumerRecord]:
    key = f"{pay.provider}:{pay.external_id}".encode()
    c = await kafka_io.consumer(stack.kafka_bootstrap)
    try:
        topic = settings.topics.transitions
        return [
            r async for r in kafka_io.read(c, topic, await kafka_io.spans(c, topic)) if r.key == key
        ]
    finally:
        await c.stop()


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
    # each delivery's real outcome, in words (once eaten as rich markup), and human times
    assert human.stdout.count("outcome duplicate") == n, human.stdout
    assert human.stdout.count(": duplicate") >= n
    assert re.search(r"received 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", human.stdout)
    assert not re.search(r"\b1[6-9]\d{11}\b", human.stdout), "epoch milliseconds printed"
    # every history row carries the version its event produced: 1, 2, 3, ...
    assert sorted(h["version"] for h in j["postgres"]["history"]) == list(range(1, n + 1))

    # the same payment by Coinbase's human reference, the charge code
    body = orjson.loads(base64.b64decode(j["raw_webhooks"][0]["body"]))
    code = body["event"]["data"]["code"]
    assert code and code != pay.external_id
    by_code = pipeline(stack, "inspect", "coinbase", code, "--json")
    assert by_code.returncode == 0, by_code.stderr
    k = orjson.loads(by_code.stdout)
    assert k["external_id"] == pay.external_id and k["reference"] == code
    assert k["postgres"]["transaction"] == j["postgres"]["transaction"]


async def test_inspect_prints_outside_values_literally(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, settings: Settings
) -> None:
    """Order ids and payment ids come from outside: rich markup in them is shown, not run."""
    ext = f"esc-[bold]{uuid.uuid4().hex[:8]}[/bold]"
    order = "[duplicate] [red]o-1[/red] [link=http://x]y[/link]"
    ev = SampleEvent(
        "standard", ext, "pending", Decimal("5.00"), "USDC", datetime.now(UTC), f"evt-{ext}", order
    )
    body, headers = signed_request(ev, settings.providers, time.time())
    assert (await api.post("/webhooks/standard", content=body, headers=headers)).status_code == 202

    async def status() -> Any:
        return await pg.fetchval("SELECT status FROM transactions WHERE external_id = $1", ext)

    await eventually(status, lambda s: s == "pending", what="the payment in Postgres")
    human = pipeline(stack, "inspect", "standard", ext)
    assert human.returncode == 0, human.stderr
    assert ext in human.stdout and order in human.stdout, human.stdout


def test_errors_exit_non_zero_with_one_line(stack: launcher.StackInfo) -> None:
    for args in (
        ("dlq", "show", "no-such-id"),
        ("republish", "no.such.topic"),
        ("republish", "webhooks.raw", "--from-time", "yesterday"),
        ("replay", "sink-postgres"),  # where to?
        ("replay", "sink-postgres", "--to-earliest", "--to-latest"),
        ("replay", "no-such-group", "--to-earliest"),
        ("stuck", "--older-than", "soon"),
    ):
        done = pipeline(stack, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("pipeline "), (
            done.stderr
        )


async def test_postgres_history_equals_clickhouse_event_by_event(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    """Each history row is its event's transition as first applied: the version that event
    produced (1, 2, 3, ...), from and to status, in Postgres as in ClickHouse."""
    pays = payments(40, seed=1111)
    reqs = requests(pays, settings.providers, seed=1111, duplicate_share=0.5, now=time.time())
    await send(api, reqs)
    await assert_converged(pg, ch, pays)
    await drained(stack.kafka_bootstrap, groups(settings))  # every sink wrote, then committed
    ids = [p.external_id for p in pays]
    rows = await pg.fetch(
        "SELECT event_id, external_id, version, from_status, to_status, applied, "
        "effective_status FROM transaction_events WHERE external_id = ANY($1::text[])",
        ids,
    )
    in_pg = {r["event_id"]: tuple(r) for r in rows}
    in_ch = {
        r[0]: tuple(r)
        for r in ch.query(
            "SELECT event_id, external_id, version, from_status, to_status, applied, "
            "effective_status FROM payment_events FINAL WHERE external_id IN {ids:Array(String)}",
            parameters={"ids": ids},
        ).result_rows
    }
    assert in_pg == in_ch
    for p in pays:
        versions = sorted(v[2] for v in in_pg.values() if v[1] == p.external_id)
        assert versions == list(range(1, len(p.events) + 1)), p.external_id
