"""Reading bounded ranges of a topic and writing records back, for the SRE tools.

Reads assign partitions directly (no consumer group, nothing committed) and stop at the end
offsets seen when the read started, so a command always terminates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from ops.errors import OpsError
from pipeline import kafka_meta


@dataclass(frozen=True)
class Span:
    """Per partition: first offset to read, and the offset to stop before."""

    partition: int
    start: int
    end: int

    @property
    def count(self) -> int:
        return max(0, self.end - self.start)


async def consumer(bootstrap: str) -> AIOKafkaConsumer:
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        request_timeout_ms=10_000,
    )
    try:
        await c.start()
    except KafkaError as exc:
        await c.stop()
        raise OpsError(f"Kafka unreachable at {bootstrap}: {type(exc).__name__}") from None
    return c


async def spans(
    c: AIOKafkaConsumer,
    topic: str,
    partitions: Sequence[int] | None = None,
    from_offset: int | None = None,
    to_offset: int | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> list[Span]:
    """Resolve offsets and/or timestamps (ms) to concrete spans, ``to`` exclusive."""
    known = await kafka_meta.partitions(c, topic)
    if not known:
        raise OpsError(f"topic {topic!r} does not exist")
    chosen = sorted(known) if partitions is None else list(partitions)
    if missing := set(chosen) - set(known):
        raise OpsError(f"topic {topic!r} has no partition {sorted(missing)}")
    tps = [TopicPartition(topic, p) for p in chosen]
    first = await c.beginning_offsets(tps)
    last = await c.end_offsets(tps)
    by_start = await c.offsets_for_times({tp: from_ms for tp in tps}) if from_ms is not None else {}
    by_end = await c.offsets_for_times({tp: to_ms for tp in tps}) if to_ms is not None else {}
    out = []
    for tp in tps:
        start, end = first[tp], last[tp]
        if from_offset is not None:
            start = max(start, from_offset)
        if to_offset is not None:
            end = min(end, to_offset)
        if from_ms is not None:
            found = by_start.get(tp)
            start = max(start, found.offset if found else end)
        if to_ms is not None:
            found = by_end.get(tp)
            end = min(end, found.offset if found else end)
        out.append(Span(tp.partition, start, max(start, end)))
    return out


async def read(
    c: AIOKafkaConsumer, topic: str, todo: Sequence[Span]
) -> AsyncIterator[ConsumerRecord]:
    """Every record of the spans, partition by partition, in offset order."""
    for span in todo:
        if not span.count:
            continue
        tp = TopicPartition(topic, span.partition)
        c.assign([tp])
        c.seek(tp, span.start)
        position = span.start
        while position < span.end:
            batch = await c.getmany(tp, timeout_ms=2000, max_records=1000)
            records = batch.get(tp, [])
            if not records:  # control records or a gap: trust the consumer's position
                position = await c.position(tp)
                if position < span.end and not (await c.getmany(tp, timeout_ms=3000)).get(tp):
                    raise OpsError(
                        f"{topic}[{span.partition}] stopped answering at offset {position}"
                    )
                c.seek(tp, position)
                continue
            for r in records:
                if r.offset >= span.end:
                    position = span.end
                    break
                position = r.offset + 1
                yield r


async def producer(bootstrap: str) -> AIOKafkaProducer:
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    try:
        await p.start()
    except KafkaError as exc:
        await p.stop()
        raise OpsError(f"Kafka unreachable at {bootstrap}: {type(exc).__name__}") from None
    return p
