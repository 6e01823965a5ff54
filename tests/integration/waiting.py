"""Polling helpers for integration tests: wait for a real outcome, fail with what was seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from stack import info, proc

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    timeout: float = 60.0,
    what: str = "condition",
    show: Callable[[T], str] = repr,
) -> T:
    """``probe()`` until ``ok``; on timeout, fail with ``show`` of what was seen last."""
    deadline = time.monotonic() + timeout
    last = await probe()
    while not ok(last):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}; last seen: {show(last)}"
            )
        await asyncio.sleep(0.25)
        last = await probe()
    return last


def stack_note(run_dir: Path, lines: int = 6) -> str:
    """What a failed wait should say of the test stack: its parts that are down, and the
    stream worker's last warnings (a stuck or restarted worker shows there)."""
    parts = info.status(run_dir)
    down = [p.name for p in parts if not p.alive]
    log = Path(run_dir) / "logs" / "streams.log"
    said = [
        line[:200]
        for line in proc.tail(log, 2000).splitlines()
        if any(level in line for level in ("[WARNING]", "[ERROR]", "[CRITICAL]"))
    ]
    return f"parts down: {down or 'none'}; worker's last warnings: {said[-lines:] or 'none'}"


async def drained(bootstrap: str, groups: dict[str, list[str]], timeout: float = 90.0) -> None:
    """Wait until every consumer group has committed up to the end of its topics."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.consumer import AIOKafkaConsumer

    from pipeline import kafka_meta

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await probe.start()
    known = {t: await kafka_meta.partitions(probe, t) for ts in groups.values() for t in ts}
    try:
        deadline = time.monotonic() + timeout
        while True:
            lagging = []
            for group, topics in groups.items():  # upstream first
                committed = await admin.list_consumer_group_offsets(group)
                tps = [TopicPartition(t, p) for t in topics for p in known[t]]
                ends = await probe.end_offsets(tps)
                for tp, end in ends.items():
                    done = committed.get(tp)
                    if end and (done is None or done.offset < end):
                        lagging.append(
                            f"{group} {tp.topic}[{tp.partition}] {done and done.offset}/{end}"
                        )
            if not lagging:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"consumers still lagging after {timeout:.0f} s: {lagging[:5]}"
                )
            await asyncio.sleep(0.5)
    finally:
        await probe.stop()
        await admin.close()


def pipeline_groups(topics: Any) -> dict[str, list[str]]:
    """The pipeline's consumer groups and the topics each reads (for ``drained``)."""
    return {
        "checkout-pipeline": [topics.raw],
        "sink-postgres": [topics.state, topics.transitions],
        "sink-clickhouse": [topics.transitions, topics.dlq],
    }
