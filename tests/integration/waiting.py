"""Polling helpers for integration tests: wait for a real outcome, fail with what was seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    timeout: float = 60.0,
    what: str = "condition",
) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if ok(last):
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}")


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
