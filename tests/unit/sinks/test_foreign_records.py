"""Records the pipeline never writes but a foreign producer could put on an internal topic
(nested too deep, a time out of range, a time without an offset) are refused when the sink
reads them, so they become dead letters instead of ending the sinks process in a loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
from aiokafka import ConsumerRecord, TopicPartition

from domain.records import DEAD_LETTER, TRANSITION, DeadLetter, Transition
from pipeline.retry import Backoff
from sinks.base import run_sink
from sinks.clickhouse import ClickHouseSink, dlq_row, event_row
from tests.unit.sinks.test_sink_loop import TP, FakeConsumer

GOOD = {
    "event_id": "coinbase:e1",
    "provider": "coinbase",
    "external_id": "c1",
    "status": "pending",
    "occurred_at": "2026-12-03T06:00:00Z",
    "provider_status": "charge:pending",
    "from_status": "new",
    "to_status": "pending",
    "applied": True,
    "note": "",
    "version": 1,
    "processed_at_ms": 1796277268000,
}
LETTER = {
    "id": "webhooks.raw:0:1:apply",
    "stage": "apply",
    "reason": "x",
    "attempts": 1,
    "failed_at_ms": 1796277268000,
    "source": {"topic": "webhooks.raw", "partition": 0, "offset": 1},
    "key": None,
    "value": None,
    "headers": [],
}
FOREIGN = {
    "nested too deep": b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}",
    "processed in year 33658": orjson.dumps({**GOOD, "processed_at_ms": 10**15}),
    "a negative time": orjson.dumps({**GOOD, "processed_at_ms": -1}),
    "a time without an offset": orjson.dumps({**GOOD, "occurred_at": "2026-12-03T06:00:00"}),
}


class RowSink:
    """ClickHouse's decode and row building, without a server."""

    name = "rows"

    def __init__(self) -> None:
        self.real = ClickHouseSink("http://unused", "db", "u", "p", "webhooks.dlq")
        self.rows: list[list[object]] = []

    async def start(self) -> None:
        return None

    def decode(self, record: ConsumerRecord) -> Transition | DeadLetter:
        return self.real.decode(record)

    async def write(self, records: Sequence[Transition | DeadLetter]) -> None:
        for r in records:
            self.rows.append(dlq_row(r) if isinstance(r, DeadLetter) else event_row(r))

    async def close(self) -> None:
        return None


def test_the_decoders_refuse_what_a_sink_could_not_store() -> None:
    assert TRANSITION.decode(orjson.dumps(GOOD)).processed_at_ms == 1796277268000
    assert DEAD_LETTER.decode(orjson.dumps(LETTER)).failed_at_ms == 1796277268000
    for what, value in FOREIGN.items():
        try:
            TRANSITION.decode(value)
        except (ValueError, RecursionError):
            continue
        raise AssertionError(f"accepted: {what}")
    late = orjson.dumps({**LETTER, "failed_at_ms": 10**15})
    try:
        DEAD_LETTER.decode(late)
    except ValueError:
        return
    raise AssertionError("accepted a dead letter of year 33658")


async def test_foreign_records_become_dead_letters_and_the_sink_goes_on() -> None:
    stop, sink = asyncio.Event(), RowSink()
    values = [orjson.dumps(GOOD), *FOREIGN.values(), orjson.dumps(LETTER)]
    topics = ["payments.transitions"] * (len(values) - 1) + ["webhooks.dlq"]
    records = [
        ConsumerRecord(t, TP.partition, i, 0, 0, b"k", v, None, 1, len(v), [])
        for i, (t, v) in enumerate(zip(topics, values, strict=True))
    ]
    consumer = FakeConsumer([records], stop)
    dead: list[int] = []

    async def dead_letter(r: ConsumerRecord, reason: str) -> None:
        assert "undecodable record" in reason
        dead.append(r.offset)

    await run_sink(sink, consumer, 100, 10, Backoff(0.001, 0.01, 0), stop, dead_letter)  # type: ignore[arg-type]
    assert dead == [1, 2, 3, 4]
    assert len(sink.rows) == 2  # the good transition and the good dead letter
    last = len(values) - 1  # past every record: the foreign ones are not read again
    assert consumer.commits == [
        {
            TopicPartition("payments.transitions", 0): last,
            TopicPartition("webhooks.dlq", 0): last + 1,
        }
    ]
