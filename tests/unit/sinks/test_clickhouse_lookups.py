"""Which keys the ClickHouse sink looks up before inserting (decision 0017): none for live first
transitions, every one for what an earlier write may hold. A recording client stands in for
ClickHouse (tests/integration/test_sinks.py has the real one)."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import ConsumerRecord

from bench.sinks_bench import records
from sinks.clickhouse import ClickHouseSink

TOPIC = "t"  # the topic bench.sinks_bench.records() gives its transitions


class RecordingClient:
    """Answers every lookup with the keys it was told are stored; keeps the looked-up keys
    and the inserted rows."""

    def __init__(self, stored: set[str] | None = None) -> None:
        self.stored = stored or set()
        self.looked_up: list[str] = []
        self.inserted: dict[str, list[list[Any]]] = {}

    async def query(self, sql: str, parameters: dict[str, Any]) -> Any:
        ids = parameters["ids"]
        self.looked_up += ids

        class Result:
            result_rows = [(k,) for k in ids if k in self.stored]

        return Result()

    async def insert(self, table: str, rows: list[list[Any]], column_names: list[str]) -> None:
        self.inserted.setdefault(table, []).extend(rows)

    async def close(self) -> None:
        return None


def sink(client: RecordingClient) -> ClickHouseSink:
    s = ClickHouseSink("http://unused", "db", "u", "", TOPIC, "dlq")
    s._client = client  # connected already: no migration against the recording client
    return s


def at(r: ConsumerRecord, offset: int, **change: Any) -> ConsumerRecord:
    doc = {**orjson.loads(r.value), **change}
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, None, orjson.dumps(doc), None, 0, 0, [])


async def test_live_first_transitions_are_inserted_without_a_lookup() -> None:
    _, trans = records(20)
    batch = [at(r, 100 + i) for i, r in enumerate(trans)]
    client = RecordingClient()
    s = sink(client)
    s.assigned({(TOPIC, 0): 100})
    await s.write(batch)
    assert client.looked_up == []
    assert len(client.inserted["payment_events"]) == len(batch)


async def test_everything_an_earlier_write_may_hold_is_looked_up_and_skipped_when_stored() -> None:
    _, trans = records(20)
    live = [at(r, 100 + i) for i, r in enumerate(trans)]
    below = at(trans[0], 99)  # produced before the sink first read the partition
    resent = at(trans[1], 200, outcome="duplicate")  # a duplicate's re-sent transition
    client = RecordingClient(stored={orjson.loads(below.value)["event_id"]})
    s = sink(client)
    s.assigned({(TOPIC, 0): 100})
    await s.write([below, resent, *live[2:]])
    keys = {orjson.loads(r.value)["event_id"] for r in (below, resent)}
    assert keys <= set(client.looked_up)
    assert not set(client.looked_up) & {orjson.loads(r.value)["event_id"] for r in live[2:]}
    inserted = {row[0] for row in client.inserted["payment_events"]}
    assert orjson.loads(below.value)["event_id"] not in inserted  # stored: skipped

    # the same batch again (a redelivery after a rebalance): at or below what this sink
    # wrote, so every key is looked up now
    client.looked_up.clear()
    await s.write(live[2:])
    assert {orjson.loads(r.value)["event_id"] for r in live[2:]} <= set(client.looked_up)


async def test_a_sink_never_told_its_partitions_looks_every_key_up() -> None:
    _, trans = records(5)
    client = RecordingClient()
    await sink(client).write(trans)
    assert len(set(client.looked_up)) >= len({orjson.loads(r.value)["event_id"] for r in trans})
