"""Wait until the pipeline has taken in everything written to it so far.

A consumer group has drained when its committed offsets have reached the end offsets of the
topics it reads. The pipeline's groups are checked in pipeline order (the stream worker, then
the sinks), and the end offsets of a group's topics are read only after the groups upstream of
it have drained. The stream worker commits a batch only once the broker has acked every record
the batch produced, and a sink commits only after its database write: so when every group has
drained, everything sent before the call is in Postgres and ClickHouse.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pipeline import kafka_meta
from pipeline.settings import Settings


@dataclass(frozen=True)
class Group:
    """A consumer group and the topics it reads."""

    name: str
    topics: tuple[str, ...]


class NotDrained(Exception):
    """A group still lagged when time ran out: which, and by how many records."""


def pipeline_groups(settings: Settings) -> list[Group]:
    """The pipeline's consumer groups, upstream first (the sinks' names: sinks/main.py)."""
    t = settings.topics
    return [
        Group(settings.streams.app_id, (t.raw,)),
        Group("sink-postgres", (t.state, t.transitions)),
        Group("sink-clickhouse", (t.transitions, t.dlq)),
    ]


async def lag(
    admin: AIOKafkaAdminClient, probe: AIOKafkaConsumer, group: Group
) -> dict[TopicPartition, int]:
    """Records each partition of the group's topics holds past the group's committed offset
    (partitions that hold nothing new are left out)."""
    tps = []
    for topic in group.topics:
        known = await kafka_meta.partitions(probe, topic)
        if not known:
            raise NotDrained(f"topic {topic!r} does not exist")
        tps += [TopicPartition(topic, p) for p in known]
    committed = await admin.list_consumer_group_offsets(group.name)
    ends = await probe.end_offsets(tps)
    behind = {}
    for tp, end in ends.items():
        done = committed.get(tp)
        n = end - (done.offset if done is not None and done.offset >= 0 else 0)
        if n > 0:
            behind[tp] = n
    return behind


async def wait_drained(
    bootstrap: str, groups: list[Group], timeout: float = 120.0, poll: float = 0.2
) -> float:
    """Return the seconds it took until every group had drained; raise ``NotDrained``."""
    started = time.monotonic()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await admin.start()
    try:
        await probe.start()
        while True:
            lagging: list[str] = []
            for group in groups:  # upstream first: stop at the first group still behind
                behind = await lag(admin, probe, group)
                if behind:
                    lagging = [
                        f"{group.name} {tp.topic}[{tp.partition}] {n} behind"
                        for tp, n in sorted(behind.items())
                    ]
                    break
            if not lagging:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                more = f" (+{len(lagging) - 3} more)" if len(lagging) > 3 else ""
                raise NotDrained(
                    f"not drained after {timeout:.0f} s: {', '.join(lagging[:3])}{more}"
                )
            await asyncio.sleep(poll)
    finally:
        await probe.stop()
        await admin.close()
