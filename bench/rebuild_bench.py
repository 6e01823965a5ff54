"""Rebuild: ``pipeline rebuild`` over 200,000 webhooks on ``webhooks.raw`` (target: at least
3,000 webhooks/s, with a result identical to the live run's).

On a stack of its own (Kafka, Postgres, ClickHouse, the stream worker and the sinks; no
ingest: the webhooks are put on the raw topic directly, which is much faster than HTTP), the
live pipeline first takes in every webhook, and the bench waits until the worker and both
sinks have committed up to the end of their topics. Then the real command runs in its own
process, and its report says how long each phase took (read the raw topic, fold it through
the worker's steps, write the scratch database, compare with live Postgres and ClickHouse);
the process's CPU seconds and peak RSS come from the kernel (``wait4``).

The records are exactly what ingest writes: each signed request goes through ingest's own
intake (signature check, payment key, envelope) into its in-memory writer, and is produced
as ingest's writer produces it (key, value, headers, partitioner, acks=all, idempotent).
A rebuild that differs from the live run fails the part (``make bench`` exits non-zero).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench import common
from bench.loadgen import build
from domain.records import RawWebhook
from ingest.ids import new_id
from ingest.verify.registry import build_verifiers
from ingest.webhooks import WebhookIntake
from ingest.writer import MemoryWriter
from pipeline.partitioner import CachedPartitioner
from pipeline.settings import Settings
from stack import drain, launcher, services
from testing.traffic import Request

TARGET_PER_S = 3000
#: provider redeliveries, and the window inside which deliveries are shuffled (out of order)
DUPLICATE_SHARE, WINDOW = 0.1, 50


def raw_webhooks(settings: Settings, count: int, seed: int = 41) -> list[RawWebhook]:
    """``count`` signed webhooks of every provider (with redeliveries, out of order), each
    accepted by ingest's own intake: the records ingest writes to Kafka, ids aside."""
    # about 3.5 requests per payment (3.2 events, 10 % redelivered): enough payments, cut
    _, reqs = build(count // 3 + 1, settings.providers, {}, DUPLICATE_SHARE, WINDOW, seed)
    return asyncio.run(_through_intake(settings, reqs[:count]))


async def _through_intake(settings: Settings, reqs: list[Request]) -> list[RawWebhook]:
    writer = MemoryWriter()
    intake = WebhookIntake(build_verifiers(settings.providers), writer, 1, len(reqs) + 1)
    for r in reqs:
        answer = await intake.accept(r.provider, r.headers, r.body, new_id())
        if answer.status != 202:
            raise RuntimeError(f"ingest refused a bench webhook: {answer.status} {answer.body!r}")
    return writer.raw


async def produce(bootstrap: str, topic: str, raws: list[RawWebhook]) -> None:
    """As ``ingest.writer.RawWriter`` writes (key, value, headers, partitioner, acks=all,
    idempotent), without waiting for each ack before the next send."""
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        partitioner=CachedPartitioner(),
        max_batch_size=512 * 1024,
    )
    await p.start()
    try:
        acks = [
            await p.send(topic, r.body, key=r.kafka_key, headers=r.to_kafka_headers()) for r in raws
        ]
        await asyncio.gather(*acks)
    finally:
        await p.stop()


def run_rebuild(info: launcher.StackInfo) -> tuple[int, dict[str, Any], dict[str, float]]:
    """``pipeline rebuild --json`` on the stack: its exit status, its report, and its wall
    seconds, CPU seconds and peak resident MiB."""
    logs = common.BENCH_RUN / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / "rebuild.out", logs / "rebuild.err"
    env = {**os.environ, **info.env(), "PIPELINE_RUN_DIR": info.run_dir}
    started = time.perf_counter()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "rebuild", "--json"],
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=services.REPO,
        )
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):  # 2: the report says what differs
        raise RuntimeError(f"pipeline rebuild exited {code}: {err.read_text()[-500:]}")
    return (
        code,
        orjson.loads(out.read_bytes()),
        {
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": usage.ru_maxrss / 1024,
        },
    )


def figures(
    count: int, code: int, report: dict[str, Any], usage: dict[str, float]
) -> dict[str, Any]:
    """The part's result: rates per webhook read from the raw topic, per phase and overall."""
    n, phase = report["raw_records"], report["seconds"]

    def rate(seconds: float) -> int:
        return round(n / seconds) if seconds else 0

    out: dict[str, Any] = {
        "target_per_s": TARGET_PER_S,
        "webhooks": count,
        "raw_records": n,
        "read_per_s": rate(phase["read"]),
        "fold_per_s": rate(phase["fold"]),
        "write_per_s": rate(phase["write"]),
        "compare_s": round(phase["compare"], 1),
        "overall_per_s": rate(usage["wall_s"]),
        "command_s": round(usage["wall_s"], 1),
        "cpu_s": round(usage["cpu_s"], 1),
        "peak_rss_mib": round(usage["peak_rss_mib"]),
        "match": bool(report["match"]) and code == 0 and n == count,
        **{k: report[k] for k in ("rebuilt", "live", "events_rebuilt", "events_live")},
        "dead_letters": report["dead_letters"],
        "seconds": phase,
    }
    if not out["match"]:
        first = "; ".join(report["differences"][:3]) or f"{n} raw records, {count} written"
        out["error"] = f"rebuild differs from the live run: {first}"[:500]
    return out


def bench(settings: Settings, count: int = 200_000) -> dict[str, Any]:
    raws = raw_webhooks(settings, count)
    payments = len({r.key for r in raws})
    with common.infra(settings, "rebuild") as info:
        for part in ("streams", "sinks"):  # no ingest, notify or dashboard: nothing uses them
            launcher.start_part(Path(info.run_dir), part)
        started = time.perf_counter()
        asyncio.run(produce(info.kafka_bootstrap, settings.topics.raw, raws))
        produced = time.perf_counter() - started
        del raws  # the rebuild's process, not this one, should hold the memory now
        groups = drain.pipeline_groups(settings)
        asyncio.run(drain.wait_drained(info.kafka_bootstrap, groups, timeout=300))
        live = time.perf_counter() - started
        code, report, usage = run_rebuild(info)
    return {
        **figures(count, code, report, usage),
        "date": common.machine()["date"],
        "payments": payments,
        "produce_s": round(produced, 1),
        "live_s": round(live, 1),
        "live_per_s": round(count / live),
    }


def render(r: dict[str, Any]) -> list[str]:
    """The section of docs/benchmarks.md."""
    verdict = "identical" if r["match"] else "**FAILED: differs**"
    return [
        "## Rebuild",
        "",
        f"`pipeline rebuild` (the real command, in its own process; measured {r['date']}) over "
        f"{r['webhooks']:,} webhooks of every provider on `webhooks.raw` ({r['payments']:,} "
        f"payments, {DUPLICATE_SHARE * 100:.0f} % provider redeliveries, shuffled in windows of "
        f"{WINDOW}), written as ingest writes them and first taken in by the live stream worker "
        f"and sinks ({r['live_s']} s from the first write until both sinks had committed every "
        f"record, {r['live_per_s']:,} webhooks/s). Webhooks per second of each phase: read the "
        "raw topic, fold it through the worker's own steps, write a scratch database through "
        "the Postgres sink; then the comparison with live Postgres and ClickHouse:",
        "",
        "| read /s | fold /s | write /s | compare | overall /s (target ≥ 3,000) | CPU | peak RSS "
        "| result |",
        "|---|---|---|---|---|---|---|---|",
        "| "
        + " | ".join(
            [
                f"{r['read_per_s']:,}",
                f"{r['fold_per_s']:,}",
                f"{r['write_per_s']:,}",
                f"{r['compare_s']} s",
                f"{r['overall_per_s']:,} ({r['command_s']} s)",
                f"{r['cpu_s']} s",
                f"{r['peak_rss_mib']:,} MiB",
                f"{verdict}: {r['rebuilt']:,} payments, {r['events_rebuilt']:,} events",
            ]
        )
        + " |",
        "",
    ]


if __name__ == "__main__":
    from pipeline.settings import load_settings

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(orjson.dumps(bench(load_settings(), n), option=orjson.OPT_INDENT_2).decode())
