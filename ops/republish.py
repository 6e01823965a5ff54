"""Re-publish: append copies of a range of a topic's records to the same topic.

Every record is produced again with the same key, value and headers, so it lands in the same
partition and every consumer processes it again; the pipeline is idempotent, so results stay
unchanged. Unlike a replay (``ops.replay``, an offset reset), the topic grows: ``inspect``
then shows the copies as deliveries of their own. For when a consumer cannot be stopped, or
another cluster or topic should get the records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ops import kafka_io
from ops.kafka_io import Span


@dataclass(frozen=True)
class Selection:
    topic: str
    partitions: list[int] | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    from_ms: int | None = None
    to_ms: int | None = None


async def plan(bootstrap: str, sel: Selection) -> list[Span]:
    c = await kafka_io.consumer(bootstrap)
    try:
        return await kafka_io.spans(
            c, sel.topic, sel.partitions, sel.from_offset, sel.to_offset, sel.from_ms, sel.to_ms
        )
    finally:
        await c.stop()


async def republish(
    bootstrap: str, topic: str, todo: list[Span], progress: Callable[[int], None] = lambda n: None
) -> int:
    """Produce every record of the spans again; returns how many were sent."""
    c = await kafka_io.consumer(bootstrap)
    p = await kafka_io.producer(bootstrap)
    sent = 0
    try:
        pending = []
        async for r in kafka_io.read(c, topic, todo):
            pending.append(await p.send(topic, r.value, key=r.key, headers=list(r.headers or [])))
            sent += 1
            if len(pending) >= 500:
                for fut in pending:
                    await fut
                progress(len(pending))
                pending.clear()
        for fut in pending:
            await fut
        progress(len(pending))
    finally:
        await p.stop()
        await c.stop()
    return sent
