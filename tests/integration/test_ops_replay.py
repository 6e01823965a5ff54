"""Replay the Kafka way on the real stack: a stopped consumer group's offsets are reset with
Kafka's own kafka-consumer-groups (the kafka-tools jar of the broker's version), its consumers
start again and re-read, and Postgres and ClickHouse are exactly what they were."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ops import kafka_io, kafka_tools
from pipeline.settings import Settings
from stack import launcher
from testing.traffic import payments, requests
from tests.integration.test_ops import pipeline
from tests.integration.test_stream_semantics import assert_converged, send
from tests.integration.waiting import drained, pipeline_groups


async def everything(pg: asyncpg.Pool, ch: Any) -> dict[str, Any]:
    """Every row the sinks wrote (``written_at`` aside: the time of the write itself)."""
    return {
        "transactions": [
            tuple(r)
            for r in await pg.fetch(
                "SELECT provider, external_id, status, amount, currency, order_id, "
                "expected_amount, expected_currency, late, version, updated_at "
                "FROM transactions ORDER BY provider, external_id"
            )
        ],
        "transaction_events": [
            tuple(r) for r in await pg.fetch("SELECT * FROM transaction_events ORDER BY event_id")
        ],
        "checkouts": [
            tuple(r)
            for r in await pg.fetch("SELECT * FROM checkouts ORDER BY provider, external_id")
        ],
        # no FINAL: a re-read record must not even add a row for the engine to collapse
        "payment_events": ch.query(
            "SELECT * FROM payment_events ORDER BY provider, event_id"
        ).result_rows,
        "ingest_log": ch.query("SELECT * FROM ingest_log ORDER BY delivery_id").result_rows,
        "dead_letters": ch.query("SELECT * FROM dead_letters ORDER BY id").result_rows,
    }


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: m.offset for tp, m in offsets.items()}


@contextmanager
def stopped(stack: launcher.StackInfo, part: str) -> Iterator[None]:
    """One part of the stack stopped (SIGTERM: its consumers leave their groups) and started
    again on its old addresses, whatever happens in between."""
    run_dir = Path(stack.run_dir)
    launcher.stop_part(run_dir, part)
    try:
        yield
    finally:
        launcher.start_part(run_dir, part)


async def settled(stack: launcher.StackInfo, settings: Settings) -> None:
    """Every group committed to the end of its topics: a sink commits only after its write
    (decision 0021), so everything sent is in Postgres and ClickHouse."""
    await drained(stack.kafka_bootstrap, pipeline_groups(settings.topics))


async def traffic(
    api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings, seed: int
) -> None:
    pays = payments(30, seed=seed)
    await send(
        api, requests(pays, settings.providers, seed=seed, duplicate_share=0.3, now=time.time())
    )
    await assert_converged(pg, ch, pays)


async def test_sinks_replay_from_a_reset_group_and_change_nothing(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    await traffic(api, pg, ch, settings, seed=3131)
    await settled(stack, settings)
    before = await everything(pg, ch)
    t = settings.topics

    busy = pipeline(stack, "replay", "sink-postgres", "--to-earliest", "--dry-run")
    assert busy.returncode == 1 and "is active" in busy.stderr, busy.stderr
    assert "stop its consumers first" in busy.stderr

    with stopped(stack, "sinks"):
        # by hand, as an SRE's runbook has it: Kafka's own tool, by time
        kafka_tools.run(
            stack.kafka_bootstrap,
            "--reset-offsets",
            "--group",
            "sink-clickhouse",
            "--all-topics",
            "--to-datetime",
            "2000-01-01T00:00:00.000",
            "--execute",
        )
        assert set((await committed(stack.kafka_bootstrap, "sink-clickhouse")).values()) == {0}

        # through `pipeline replay`: the dry run shows the offsets and moves nothing
        was = await committed(stack.kafka_bootstrap, "sink-postgres")
        assert any(was.values())
        dry = pipeline(stack, "replay", "sink-postgres", "--to-earliest", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "dry run: would reset 8 partitions" in dry.stdout, dry.stdout
        assert t.state in dry.stdout and t.transitions in dry.stdout
        assert await committed(stack.kafka_bootstrap, "sink-postgres") == was
        done = pipeline(stack, "replay", "sink-postgres", "--to-earliest")
        assert done.returncode == 0, done.stderr
        assert "reset 8 partitions of sink-postgres" in done.stdout
        assert set((await committed(stack.kafka_bootstrap, "sink-postgres")).values()) == {0}

    await settled(stack, settings)
    assert await everything(pg, ch) == before


async def test_streams_replay_from_a_reset_group_resends_equal_outputs(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    """The stream worker re-reads webhooks.raw from an offset reset by time: every webhook
    is now a duplicate, whose re-sent transition equals the original in every field but the
    delivery's own, and the databases stay exactly as they were."""
    t = settings.topics
    started_ms = int(time.time() * 1000)
    await traffic(api, pg, ch, settings, seed=4242)
    await settled(stack, settings)
    before = await everything(pg, ch)
    ends = await transition_ends(stack, t.transitions)

    with stopped(stack, "streams"):
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started_ms / 1000)) + "Z"
        done = pipeline(stack, "replay", settings.streams.app_id, "-t", t.raw, "--to-time", since)
        assert done.returncode == 0, done.stderr
        assert "reset 4 partitions" in done.stdout

    await settled(stack, settings)
    assert await everything(pg, ch) == before
    originals, resent = await transitions_around(stack, t.transitions, ends)
    assert len(resent) >= 30
    delivery = {"delivery_id", "delivery_received_at_ms", "processed_at_ms", "outcome"}
    for doc in resent:
        assert doc["outcome"] == "duplicate"
        first = originals[doc["event_id"]]
        strip = {k: v for k, v in first.items() if k not in delivery}
        assert {k: v for k, v in doc.items() if k not in delivery} == strip, doc["event_id"]


async def transition_ends(stack: launcher.StackInfo, topic: str) -> dict[int, int]:
    c = await kafka_io.consumer(stack.kafka_bootstrap)
    try:
        return {s.partition: s.end for s in await kafka_io.spans(c, topic)}
    finally:
        await c.stop()


async def transitions_around(
    stack: launcher.StackInfo, topic: str, ends: dict[int, int]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The first transition of each event before ``ends``, and every one after."""
    c = await kafka_io.consumer(stack.kafka_bootstrap)
    first: dict[str, dict[str, Any]] = {}
    after: list[dict[str, Any]] = []
    try:
        async for r in kafka_io.read(c, topic, await kafka_io.spans(c, topic)):
            doc = orjson.loads(r.value)
            if r.offset >= ends[r.partition]:
                after.append(doc)
            elif doc.get("outcome") != "duplicate":
                first.setdefault(doc["event_id"], doc)
    finally:
        await c.stop()
    return first, after
