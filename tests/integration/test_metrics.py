"""Prometheus metrics of every process on the real stack: the ingest, streams and sinks
listeners on the internal ports the launcher gave them (never ingest's public port); counters
move by what traffic did."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from pipeline.settings import Settings
from stack import launcher
from testing.traffic import payments, requests
from tests.integration.test_stream_semantics import assert_converged, send
from tests.integration.waiting import drained, eventually, pipeline_groups

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def quiet(url: str, stack: launcher.StackInfo, settings: Settings) -> Samples:
    """A scrape once every consumer group has committed to the end of its topics: whatever
    earlier tests sent is counted (the worker and the sinks count before they commit)."""
    await drained(stack.kafka_bootstrap, pipeline_groups(settings.topics))
    return await scrape(url)


def port_url(stack: launcher.StackInfo, part: str) -> str:
    port = stack.parts[part].port2
    assert port > 0, f"the launcher gave {part} no metrics port"
    return f"http://127.0.0.1:{port}/metrics"


async def test_ingest_metrics_count_requests_failures_writes_and_sizes(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    url = port_url(stack, "ingest")
    before = await scrape(url)
    pays = payments(30, seed=811)
    reqs = requests(pays, settings.providers, seed=811, now=time.time())
    await send(api, reqs)
    forged = b'{"id": "x"}'
    bad = await api.post(
        "/webhooks/coinbase",
        content=forged,
        headers={"content-type": "application/json", "x-cc-webhook-signature": "00" * 32},
    )
    assert bad.status_code == 401, bad.text
    assert bad.json()["detail"] == "signature rejected: bad signature"
    after = await scrape(url)

    per_provider = Counter(r.provider for r in reqs)
    for provider, n in per_provider.items():
        got = delta(before, after, "pipeline_ingest_requests_total", provider=provider, code="202")
        assert got == n, provider
        sizes = sum(len(r.body) for r in reqs if r.provider == provider)
        sizes += len(forged) if provider == "coinbase" else 0  # measured before the check
        assert delta(before, after, "pipeline_ingest_body_bytes_sum", provider=provider) == sizes
    assert (
        delta(before, after, "pipeline_ingest_requests_total", provider="coinbase", code="401") == 1
    )
    failures = "pipeline_ingest_verification_failures_total"
    assert delta(before, after, failures, provider="coinbase", reason="bad signature") == 1
    writes = "pipeline_ingest_kafka_write_seconds_count"
    assert delta(before, after, writes, outcome="ok") == len(reqs)
    assert delta(before, after, "pipeline_ingest_kafka_write_seconds_sum", outcome="ok") > 0
    await assert_converged(pg, ch, pays)


async def test_streams_metrics_count_normalized_applied_duplicates_latency_and_dlq(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    url = port_url(stack, "streams")
    before = await quiet(url, stack, settings)
    pays = payments(36, seed=812)
    reqs = requests(pays, settings.providers, seed=812, duplicate_share=0.4, now=time.time())
    duplicates = sum(r.duplicate for r in reqs)
    assert duplicates > 5
    await send(api, reqs)
    await assert_converged(pg, ch, pays)

    async def now() -> Samples:
        return await scrape(url)

    def settled(s: Samples) -> bool:
        return delta(before, s, "pipeline_streams_events_total") >= len(reqs)

    after = await eventually(now, settled, what="every delivery counted by streams")
    for provider, n in Counter(r.provider for r in reqs).items():
        got = delta(before, after, "pipeline_streams_normalized_total", provider=provider)
        assert got == n, provider
    distinct = sum(len(p.events) for p in pays)
    applied = delta(before, after, "pipeline_streams_events_total", outcome="applied")
    refused = delta(before, after, "pipeline_streams_events_total", outcome="refused")
    assert applied + refused == distinct
    assert delta(before, after, "pipeline_streams_events_total", outcome="duplicate") == duplicates
    latency = "pipeline_streams_processing_latency_seconds"
    assert delta(before, after, f"{latency}_count") == len(reqs)
    assert delta(before, after, f"{latency}_sum") > 0

    # a poison record: counted as a dead letter of the normalize stage
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topics.raw, b"\x00poison", key=uuid.uuid4().bytes)
    finally:
        await producer.stop()
    dlq = "pipeline_streams_dead_letters_total"
    await eventually(
        now,
        lambda s: delta(after, s, dlq, stage="normalize") == 1,
        what="the poison record counted as a dead letter",
    )


async def test_sinks_metrics_count_rows_flushes_and_batches(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    url = port_url(stack, "sinks")
    before = await quiet(url, stack, settings)
    pays = payments(30, seed=813)
    reqs = requests(pays, settings.providers, seed=813, duplicate_share=0.2, now=time.time())
    await send(api, reqs)
    await assert_converged(pg, ch, pays)

    async def now() -> Samples:
        return await scrape(url)

    # every delivery yields one transition (ClickHouse, and Postgres history); the stream
    # worker sends one state snapshot per payment per batch it takes: Postgres writes between
    # one snapshot per payment and one per delivery, plus one transition per delivery
    after = await eventually(
        now,
        lambda s: (
            delta(before, s, "pipeline_sink_rows_written_total", sink="clickhouse") >= len(reqs)
            and delta(before, s, "pipeline_sink_rows_written_total", sink="postgres") >= len(pays)
        ),
        what="every record written counted",
    )
    assert delta(before, after, "pipeline_sink_rows_written_total", sink="postgres") <= 2 * len(
        reqs
    )
    for name in ("postgres", "clickhouse"):
        rows = delta(before, after, "pipeline_sink_rows_written_total", sink=name)
        assert delta(before, after, "pipeline_sink_batch_size_sum", sink=name) == rows
        flushes = delta(before, after, "pipeline_sink_flush_seconds_count", sink=name)
        assert 1 <= flushes <= rows
        assert delta(before, after, "pipeline_sink_batch_size_count", sink=name) == flushes
        assert value(after, "pipeline_sink_up", sink=name) == 1
        assert ("pipeline_sink_retries_total", frozenset({("sink", name)})) in after


async def test_sink_state_gauge_and_retries_follow_a_clickhouse_outage(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    url, run = port_url(stack, "sinks"), Path(stack.run_dir)
    before = await scrape(url)
    assert value(before, "pipeline_sink_up", sink="clickhouse") == 1
    pays = payments(12, seed=814)
    await asyncio.to_thread(launcher.stop_part, run, "clickhouse")
    try:
        await send(api, requests(pays, settings.providers, seed=814, now=time.time()))

        async def now() -> Samples:
            return await scrape(url)

        down = await eventually(
            now,
            lambda s: (
                value(s, "pipeline_sink_up", sink="clickhouse") == 0
                and delta(before, s, "pipeline_sink_retries_total", sink="clickhouse") >= 1
            ),
            what="the ClickHouse sink reported down, with retries",
        )
        assert value(down, "pipeline_sink_up", sink="postgres") == 1
    finally:
        await asyncio.to_thread(launcher.start_part, run, "clickhouse")
    await eventually(
        now, lambda s: value(s, "pipeline_sink_up", sink="clickhouse") == 1, what="sink back up"
    )
    await assert_converged(pg, ch, pays)


async def test_every_process_exposes_its_process_metrics(stack: launcher.StackInfo) -> None:
    for url in (
        port_url(stack, "ingest"),
        port_url(stack, "streams"),
        port_url(stack, "sinks"),
    ):
        samples = await scrape(url)
        assert value(samples, "process_resident_memory_bytes") > 0
