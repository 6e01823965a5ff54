"""End to end on the whole stack on this machine: a sustained open-loop rate for a minute,
the rate achieved, the latency from ingest's receipt (just before the 202) to the Postgres row,
the CPU µs per accepted webhook of every process (the load generator's own apart) and their
resident memory; and a short ramp that finds the rate at which that latency's p99 stays under
250 ms."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import uvloop
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from bench import common, notify_bench
from bench.loadgen import Result, build, run
from ops import kafka_io
from pipeline.settings import Settings
from stack import launcher, proc, services
from testing.traffic import Request

#: a receiver's pid, counted apart from the stack like the load generator
RECEIVER = "receiver"
#: where the stack's processes read the notifier's endpoints (they inherit this environment)
ENDPOINTS_ENV = "PIPELINE_NOTIFY__ENDPOINTS"


@contextmanager
def receiver(settings: Settings) -> Iterator[int]:
    """A merchant's endpoint for the stack's notifier: a process of its own answering 204
    (bench/notify_bench.py), in place of the local config's demo shop, which nothing serves
    during the bench (a dead endpoint would make every notification fail and be rescheduled).
    The stack's processes read the endpoint from the environment; yields the receiver's pid."""
    port = proc.free_port()
    log = common.BENCH_RUN / "logs" / "e2e-receiver.log"
    cmd = [sys.executable, "-m", notify_bench.__name__, "receiver", str(port)]
    rx = proc.spawn(cmd, log, cwd=services.REPO)
    wanted = settings.notify.endpoints[0].statuses if settings.notify.endpoints else None
    endpoint = {"url": f"http://127.0.0.1:{port}/hooks", "secrets": [notify_bench.SECRET]}
    saved = os.environ.get(ENDPOINTS_ENV)
    os.environ[ENDPOINTS_ENV] = orjson.dumps([{**endpoint, "statuses": wanted}]).decode()
    try:
        proc.wait_until("receiver", lambda: proc.port_open(port), rx, log, timeout=30)
        yield rx.pid
    finally:
        if saved is None:
            os.environ.pop(ENDPOINTS_ENV, None)
        else:
            os.environ[ENDPOINTS_ENV] = saved
        proc.stop(rx.pid)
        rx.wait()


async def notifications(dsn: str) -> dict[str, int]:
    """The notifier's outbox by state: what the receiver was sent, what still waits."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT state, count(*) AS n FROM notify_outbox GROUP BY state")
    finally:
        await conn.close()
    return {r["state"]: int(r["n"]) for r in rows}


async def row_latencies(dsn: str, ids: list[str]) -> list[float]:
    """Per payment: Postgres write time minus the receipt of its newest webhook."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM written_at - updated_at) AS s FROM transactions "
            "WHERE external_id = ANY($1::text[])",
            ids,
        )
    finally:
        await conn.close()
    return [float(r["s"]) for r in rows]


async def wait_rows(dsn: str, ids: list[str], timeout: float = 120) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            n = await conn.fetchval(
                "SELECT count(*) FROM transactions WHERE external_id = ANY($1::text[])", ids
            )
            if n >= len(ids) or asyncio.get_running_loop().time() > deadline:
                return int(n)
            await asyncio.sleep(1)
    finally:
        await conn.close()


async def stamp_on_append(bootstrap: str, topic: str) -> None:
    """The broker, not the producer, stamps the topic's records (``LogAppendTime``): the
    split below then puts Faust's producer in the stream stage and the sink's fetch alone in
    the sink stage. The bench's own stack only; the topic has no other config to lose."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, topic, {"message.timestamp.type": "LogAppendTime"}
        )
        await admin.alter_configs([resource])
    finally:
        await admin.close()


async def stage_split(
    bootstrap: str, state_topic: str, dsn: str, ids: list[str]
) -> dict[str, float]:
    """Where the receipt -> Postgres time goes, per payment's final version: receipt to its
    state record on the broker (ingest, Kafka, the stream worker and its producer), and from
    there to the row (the Postgres sink's fetch and write)."""
    newest: dict[str, tuple[int, int]] = {}
    c = await kafka_io.consumer(bootstrap)
    try:
        async for r in kafka_io.read(c, state_topic, await kafka_io.spans(c, state_topic)):
            doc = orjson.loads(r.value or b"{}")
            ext, version = doc["external_id"], int(doc["version"])
            if ext not in newest or newest[ext][0] < version:
                newest[ext] = (version, r.timestamp)
    finally:
        await c.stop()
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT external_id, version, extract(epoch FROM written_at) AS w, "
            "extract(epoch FROM updated_at) AS u FROM transactions "
            "WHERE external_id = ANY($1::text[])",
            ids,
        )
    finally:
        await conn.close()
    streams, sinks = [], []
    for row in rows:
        version, stamp_ms = newest.get(row["external_id"], (-1, 0))
        if version == row["version"]:
            streams.append(stamp_ms / 1000 - float(row["u"]))
            sinks.append(float(row["w"]) - stamp_ms / 1000)
    if not streams:
        return {}
    return {
        f"{stage}_p{q}_ms": round(pct(values, q) * 1000)
        for stage, values in (("receipt_to_state", streams), ("state_to_row", sinks))
        for q in (50, 99)
    }


def pct(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


#: events per payment in the scenario mix, plus 10 % redeliveries
PER_PAYMENT = 3.3


def _requests(settings: Settings, rate: float, seconds: float, seed: int) -> list[Request]:
    _, reqs = build(int(rate * seconds / PER_PAYMENT) + 1, settings.providers, {}, 0.1, 50, seed)
    return reqs[: int(rate * seconds)]


def _step(info: launcher.StackInfo, rx_pid: int, reqs: list[Request], rate: float) -> Step:
    """One open-loop run at ``rate``, then every accepted payment waited for in Postgres:
    the load, the cores and CPU µs per accepted webhook of each process, the latencies."""
    pids = {**{name: part.pid for name, part in info.parts.items()}, RECEIVER: rx_pid}
    cpu = {name: proc.cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    res = uvloop.run(run(info.ingest_url, reqs, rate, 4000))
    elapsed = time.monotonic() - started
    spent = {name: proc.cpu_seconds(pid) - cpu[name] for name, pid in pids.items()}
    spent["loadgen"] = res.cpu_s
    accepted = max(1, res.codes.get(202, 0))
    # a payment all of whose webhooks were refused (503 when ingest could not write in
    # time; the load generator does not retry) is owed nothing
    ids = sorted({r.payment.external_id for r in res.accepted})
    landed = asyncio.run(wait_rows(info.postgres_dsn, ids))
    drain = time.monotonic() - started - elapsed
    lat = asyncio.run(row_latencies(info.postgres_dsn, ids)) or [float("nan")]
    outside = ("loadgen", RECEIVER)
    stack_us = sum(v for k, v in spent.items() if k not in outside) / accepted * 1e6
    return Step(
        res,
        ids,
        landed,
        lat,
        drain,
        {name: round(v / elapsed, 2) for name, v in spent.items()},
        {name: round(v / accepted * 1e6) for name, v in spent.items()},
        round(stack_us),
    )


@dataclass
class Step:
    res: Result
    ids: list[str]
    landed: int
    latencies: list[float]
    drain_s: float
    cores: dict[str, float]
    us_per_webhook: dict[str, int]
    stack_us_per_webhook: int

    def p99_ms(self) -> int:
        return round(pct(self.latencies, 99) * 1000)

    def summary(self) -> dict[str, Any]:
        return {
            "load": self.res.summary(),
            "payments": len(self.ids),
            "payments_in_postgres": self.landed,
            "receipt_to_postgres_p50_ms": round(pct(self.latencies, 50) * 1000),
            "receipt_to_postgres_p99_ms": self.p99_ms(),
            "receipt_to_postgres_max_ms": round(max(self.latencies) * 1000),
            "cores_busy": self.cores,
            "cpu_us_per_webhook": self.us_per_webhook,
            "stack_cpu_us_per_webhook": self.stack_us_per_webhook,
            "drain_s": round(self.drain_s, 1),
        }


#: warm-up before anything is measured: on the AMD host of 2026-12-03 the broker's JIT
#: compiler kept 0.18-0.29 cores busy for the first 60-80 s of load at 400 webhooks/s, then
#: 0.02-0.05 (its threads' CPU read from /proc); a broker runs for months, so the figures are
#: those of a warm one
WARM_S = 75.0
WARM_RATE = 300.0
#: what the results say of it (bench/render.py prints it)
WARMED = {"warm_s": WARM_S, "warm_rate": WARM_RATE}


def _warm(info: launcher.StackInfo, settings: Settings, seconds: float = WARM_S) -> None:
    """``WARM_RATE`` webhooks/s for ``seconds``, every payment then waited for in Postgres:
    the broker JIT-compiles its hot paths, and the first writes of a fresh stack (connections,
    prepared statements, the first ClickHouse parts: 750 ms each) are done with."""
    warm = _requests(settings, WARM_RATE, seconds, seed=2121)
    uvloop.run(run(info.ingest_url, warm, WARM_RATE, 4000))
    asyncio.run(wait_rows(info.postgres_dsn, sorted({r.payment.external_id for r in warm})))


def _memory(info: launcher.StackInfo) -> dict[str, dict[str, float]]:
    """Resident MiB of each part: with its child processes, and its largest single process."""
    parts = info.parts.items()
    return {
        "rss_mib": {name: round(proc.rss_mb(part.pid), 1) for name, part in parts},
        "largest_process_rss_mib": {n: round(proc.largest_rss_mb(p.pid), 1) for n, p in parts},
    }


def bench(settings: Settings, rate: float = 1000.0, seconds: int = 60) -> dict[str, Any]:
    with receiver(settings) as rx, common.infra(settings, "e2e", services_too=True) as info:
        reqs = _requests(settings, rate, seconds, seed=21)
        asyncio.run(stamp_on_append(info.kafka_bootstrap, settings.topics.state))
        _warm(info, settings)
        step = _step(info, rx, reqs, rate)
        split = asyncio.run(
            stage_split(info.kafka_bootstrap, settings.topics.state, info.postgres_dsn, step.ids)
        )
        memory = _memory(info)
        status = launcher.status(common.BENCH_RUN / "e2e")
        outbox = asyncio.run(notifications(info.postgres_dsn))
    return {
        "target_rate": rate,
        "seconds": seconds,
        **WARMED,
        **step.summary(),
        "stages": split,
        **memory,
        "notifications": outbox,
        "start_s": {r.name: r.start_s for r in status},
    }


def ramp(
    settings: Settings,
    rates: tuple[float, ...] = (500, 750, 1000, 1250, 1500, 2000),
    seconds: int = 20,
    p99_ms: int = 250,
) -> dict[str, Any]:
    """The sustained rate: the highest step at which receipt -> Postgres p99 stays under
    ``p99_ms``, every webhook is accepted and every accepted payment lands. Steps up until two
    in a row fail (one may fail to the machine's other load)."""
    steps: list[dict[str, Any]] = []
    sustained = 0.0
    failed = 0
    with receiver(settings) as rx, common.infra(settings, "e2e", services_too=True) as info:
        _warm(info, settings)
        for i, rate in enumerate(rates):
            step = _step(info, rx, _requests(settings, rate, seconds, seed=31 + i), rate)
            steps.append({"rate": rate, **step.summary(), **_memory(info)})
            ok = (
                step.res.codes.get(202, 0) == step.res.sent
                and step.landed == len(step.ids)
                and step.p99_ms() < p99_ms
            )
            failed = 0 if ok else failed + 1
            if ok:
                sustained = rate
            elif failed == 2:
                break
    return {
        "seconds_per_step": seconds,
        **WARMED,
        "p99_limit_ms": p99_ms,
        "sustained_rate": sustained,
        "steps": steps,
    }


if __name__ == "__main__":
    import sys

    from pipeline.settings import load_settings

    part = ramp(load_settings()) if "ramp" in sys.argv else bench(load_settings(), seconds=20)
    print(orjson.dumps(part, option=orjson.OPT_INDENT_2).decode())
