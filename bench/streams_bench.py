"""Streams throughput: events per second through normalize + dedupe + apply on one Faust
worker, against, in the same run and on the same topic: a raw aiokafka consumer that only
decodes the JSON, a Faust agent that only decodes, and a plain aiokafka loop that runs our
pure steps and produces the same outputs (the ceiling of our own code). CPU per event for the
worker and that loop. Also the dedup table's memory and disk per million event ids."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import common
from domain.model import transaction_key
from domain.records import Entry, RawWebhook
from pipeline import kafka_meta
from pipeline.settings import Settings
from stack import proc, services
from streams import READY_LINE
from testing.traffic import payments
from testing.webhooks import signed_request


async def fill(bootstrap: str, topic: str, count: int, settings: Settings, partitions: int) -> int:
    """Produce ``count`` payments' raw webhooks (as ingest writes them) to a fresh topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    await admin.close()
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await p.start()
    n, now = 0, time.time()
    futs = []
    for pay in payments(count, seed=99):
        for ev in pay.events:
            body, headers = signed_request(ev, settings.providers, now)
            kept = {
                k: v
                for k, v in headers.items()
                if k in ("webhook-id", "webhook-timestamp", "content-type")
            }
            raw = RawWebhook(
                uuid.uuid4().hex,
                pay.provider,
                int(time.time() * 1000),
                body,
                kept,
                key=transaction_key(pay.provider, pay.external_id),
            )
            futs.append(
                await p.send(topic, body, key=raw.kafka_key, headers=raw.to_kafka_headers())
            )
            n += 1
    for f in futs:
        await f
    await p.stop()
    return n


async def raw_consumer(bootstrap: str, topic: str, total: int) -> float:
    """Events per second of a consumer that only decodes the JSON."""
    c = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await c.start()
    seen, started = 0, time.perf_counter()
    try:
        while seen < total:
            for records in (await c.getmany(timeout_ms=1000, max_records=2000)).values():
                for r in records:  # decode the body as its provider wrote it: JSON, or a form
                    if (r.value or b"")[:1] == b"{":
                        orjson.loads(r.value)
                    else:
                        parse_qsl(r.value.decode(), strict_parsing=True)
                    seen += 1
    finally:
        await c.stop()
    return seen / (time.perf_counter() - started)


#: how often the end of the worker's output topic is read while it works: the finish is known
#: to this much (with one new client per look every 0.5 s, runs of the same code measured
#: either about 5,200 or about 4,350 /s, the finish rounded to the look after it)
POLL_S = 0.02


async def _finish(
    bootstrap: str, topic: str, expected: int, child: subprocess.Popen[bytes], log: Path
) -> tuple[float, float, float]:
    """Waits, with one client, until ``topic`` holds ``expected`` records; from the call:
    seconds until then, the worker's CPU seconds in that time, and its peak RSS in MiB."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in await kafka_meta.partitions(c, topic)]
        started, cpu_before = time.perf_counter(), proc.cpu_seconds(child.pid)
        rss, looks = 0.0, 0
        while sum((await c.end_offsets(tps)).values()) < expected:
            if looks % 25 == 0:
                rss = max(rss, proc.rss_mb(child.pid))
                if child.poll() is not None:
                    raise RuntimeError(f"worker died: {proc.tail(log)}")
                if time.perf_counter() - started > 240:
                    raise RuntimeError(f"worker too slow: {expected} records not out after 240 s")
            looks += 1
            await asyncio.sleep(POLL_S)
        elapsed = time.perf_counter() - started
        return elapsed, proc.cpu_seconds(child.pid) - cpu_before, max(rss, proc.rss_mb(child.pid))
    finally:
        await c.stop()


async def _create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, partitions, 1) for t in names])
    finally:
        await admin.close()


def _profile(pid: int, out: str) -> None:
    """py-spy's raw samples of ``pid`` for 25 s, into ``out`` (in the background)."""
    spy = str(Path(sys.executable).with_name("py-spy"))
    cmd = [spy, "record", "-p", str(pid), "-f", "raw", "-d", "25", "-o", out]
    subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def faust_worker(
    info: Any, settings: Settings, raw_topic: str, expected: int
) -> tuple[float, float, float]:
    """Events per second of one worker from raw to transitions, its resident MiB, and the
    cores it kept busy (CPU seconds per second: 1.0 is one core, all the time)."""
    tag = uuid.uuid4().hex[:8]
    topics = {
        "raw": raw_topic,
        "events": f"bench.events.{tag}",
        "state": f"bench.state.{tag}",
        "transitions": f"bench.transitions.{tag}",
        "dlq": f"bench.dlq.{tag}",
    }
    outputs = [t for k, t in topics.items() if k != "raw"]
    asyncio.run(_create_topics(info.kafka_bootstrap, outputs, settings.topics.partitions))
    data = common.BENCH_RUN / f"streams-{tag}"
    env = {
        **os.environ,
        **info.env(),
        "PIPELINE_STREAMS__APP_ID": f"bench-{tag}",
        "PIPELINE_STREAMS__DATA_DIR": str(data),
        "PIPELINE_LOG_LEVEL": "WARNING",
        **{f"PIPELINE_TOPICS__{k.upper()}": v for k, v in topics.items()},
    }
    log = common.BENCH_RUN / "logs" / f"streams-{tag}.log"
    child = proc.spawn([sys.executable, "-m", "streams.main"], log, env=env, cwd=services.REPO)
    if os.environ.get("BENCH_PROFILE"):  # py-spy flame data of the worker, for profiling runs
        _profile(child.pid, os.environ["BENCH_PROFILE"])
    try:
        # timed from the worker's "Ready": start-up (about 3 s) is not throughput
        proc.wait_until("streams", lambda: READY_LINE in log.read_text(), child, log, 60)
        out = topics["transitions"]
        elapsed, cpu_s, rss = asyncio.run(_finish(info.kafka_bootstrap, out, expected, child, log))
        cpu = cpu_s / elapsed
    finally:
        proc.stop(child.pid)
        shutil.rmtree(data, ignore_errors=True)
    return expected / elapsed, rss, cpu


def faust_floor(info: Any, topic: str, expected: int) -> float:
    """Events per second of a Faust agent that only decodes: the framework's own ceiling."""
    log = common.BENCH_RUN / "logs" / f"floor-{uuid.uuid4().hex[:8]}.log"
    child = proc.spawn(
        [sys.executable, "-m", "bench.faust_floor", info.kafka_bootstrap, topic, str(expected)],
        log,
        env={**os.environ, **info.env()},
        cwd=services.REPO,
    )
    try:
        proc.wait_until("faust floor", lambda: "rate " in log.read_text(), child, log, 240)
    finally:
        proc.stop(child.pid)
    return float(log.read_text().split("rate ", 1)[1].split()[0])


def domain_loop(info: Any, topic: str, expected: int) -> tuple[float, float]:
    """Events per second and cores busy of the plain aiokafka loop running our pure steps
    (bench/domain_loop.py): the ceiling that our own code allows."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.domain_loop", info.kafka_bootstrap, topic, str(expected)],
        env={**os.environ, **info.env()},
        cwd=services.REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    words = done.stderr.split("rate ", 1)[1].split()
    return float(words[0]), float(words[2])


def dedup_footprint(ids: int = 1_000_000, per_payment: int = 3) -> dict[str, float]:
    """Memory (Python) and disk (RocksDB, as Faust stores the table) per million event ids."""
    import rocksdict

    tracemalloc.start()
    entries = {}
    for i in range(ids // per_payment):
        entries[f"coinbase:pay-{i:09d}".encode()] = {
            f"coinbase:evt-{i:09d}-{k}": 1_795_000_000_000 + k for k in range(per_payment)
        }
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    path = common.BENCH_RUN / "dedup-rocksdb"
    shutil.rmtree(path, ignore_errors=True)
    db = rocksdict.Rdict(str(path))
    for k, seen in entries.items():
        db[k] = orjson.dumps({"seen": seen})
    db.close()
    disk = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    shutil.rmtree(path, ignore_errors=True)
    scale = 1_000_000 / ids
    return {
        "memory_mib_per_million": round(mem * scale / 2**20, 1),
        "disk_mib_per_million": round(disk * scale / 2**20, 1),
    }


#: payments whose raw webhooks each loop reads (about 2.8 each: 20,000 make 56,409): a worker
#: run lasts about 20 s on the AMD host; with 6,000 (until 2026-12-03 session 10) it lasted
#: 6-7 s and the same code measured 293-499 µs per webhook
COUNT = int(os.environ.get("BENCH_STREAMS_COUNT", "20000"))


def bench(settings: Settings, count: int = COUNT) -> dict[str, Any]:
    with common.infra(settings, "streams") as info:
        topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
        total = asyncio.run(
            fill(info.kafka_bootstrap, topic, count, settings, settings.topics.partitions)
        )
        raw_rate = asyncio.run(raw_consumer(info.kafka_bootstrap, topic, total))
        floor_rate = faust_floor(info, topic, total)
        domain_rate, domain_cpu = domain_loop(info, topic, total)
        worker_rate, rss, cpu = faust_worker(info, settings, topic, total)
    _ = Entry  # the table value the footprint mirrors: {"state": ..., "seen": {id: ms}}
    return {
        "events": total,
        "raw_consumer_per_s": round(raw_rate),
        "faust_decode_only_per_s": round(floor_rate),
        "domain_loop_per_s": round(domain_rate),
        "domain_loop_us_per_event": round(domain_cpu / domain_rate * 1e6),
        "worker_per_s": round(worker_rate),
        "worker_us_per_event": round(cpu / worker_rate * 1e6),
        "ratio": round(worker_rate / raw_rate, 3),
        "ratio_to_domain_loop": round(worker_rate / domain_rate, 3),
        "worker_rss_mib": round(rss, 1),
        "worker_cores_busy": round(cpu, 2),
        "dedup": dedup_footprint(),
    }


if __name__ == "__main__":
    from pipeline.settings import load_settings

    print(orjson.dumps(bench(load_settings()), option=orjson.OPT_INDENT_2).decode())
