"""Consumer lag per group and partition: the group's committed offset against the end offset.

A partition the group never committed counts as wholly unconsumed (committed ``None``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from dashboard.errors import SourceUnavailable


def lag_rows(
    group: str,
    topics: Sequence[str],
    committed: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
) -> list[dict[str, Any]]:
    """One row per partition of the group's topics (and of any other topic it committed)."""
    tps = {tp for tp in ends if tp.topic in topics} | set(committed)
    out = []
    for tp in sorted(tps, key=lambda p: (p.topic, p.partition)):
        done = committed.get(tp)
        done = None if done is None or done < 0 else done
        end = ends.get(tp, done or 0)
        out.append(
            {
                "group": group,
                "topic": tp.topic,
                "partition": tp.partition,
                "committed": done,
                "end": end,
                "lag": max(0, end - (done or 0)),
            }
        )
    return out


class LagReader:
    """An admin client (committed offsets) and a group-less consumer (end offsets), made
    lazily and dropped on any failure so that the next call connects again."""

    def __init__(self, bootstrap: str, timeout_s: float = 5.0) -> None:
        self._bootstrap, self._timeout_s = bootstrap, timeout_s
        self._admin: Any = None
        self._consumer: Any = None
        self._lock = asyncio.Lock()

    async def read(self, groups: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        """``groups`` maps each consumer group to the topics it consumes."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._read(groups)
        except (KafkaError, OSError, TimeoutError) as exc:
            await self.close()
            raise SourceUnavailable(f"kafka: {type(exc).__name__}") from exc

    async def _read(self, groups: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
        admin, consumer = await self._connect()
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            committed[group] = {tp: om.offset for tp, om in offsets.items()}
        tps = {tp for c in committed.values() for tp in c}
        topics = sorted({t for ts in groups.values() for t in ts})
        for meta in await admin.describe_topics(topics):  # partitions not yet committed too
            tps |= {TopicPartition(meta["topic"], p["partition"]) for p in meta["partitions"]}
        ends: dict[TopicPartition, int] = await consumer.end_offsets(list(tps)) if tps else {}
        return [
            row
            for group, topics in groups.items()
            for row in lag_rows(group, topics, committed[group], ends)
        ]

    async def _connect(self) -> tuple[Any, Any]:
        async with self._lock:
            if self._admin is None:
                admin = AIOKafkaAdminClient(
                    bootstrap_servers=self._bootstrap, request_timeout_ms=4000
                )
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=self._bootstrap,
                    group_id=None,
                    enable_auto_commit=False,
                    request_timeout_ms=4000,
                )
                try:
                    await admin.start()
                    await consumer.start()
                except BaseException:
                    await admin.close()
                    await consumer.stop()
                    raise
                self._admin, self._consumer = admin, consumer
            return self._admin, self._consumer

    async def close(self) -> None:
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        if admin is not None:
            await admin.close()
        if consumer is not None:
            await consumer.stop()
