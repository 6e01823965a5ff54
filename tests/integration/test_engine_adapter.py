"""Faust is an adapter: the worker writes exactly what the pure chain of steps gives when it
runs in a plain loop over the same raw records, with no Kafka and no Faust around it."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import asyncpg
import httpx
import orjson

from domain.model import transaction_key
from domain.records import Entry
from ops import kafka_io
from pipeline.settings import Settings
from stack import launcher
from streams import flow
from testing.traffic import payments, requests
from tests.integration.test_stream_semantics import assert_converged, send
from tests.integration.waiting import drained, pipeline_groups


async def records(bootstrap: str, topic: str, keys: set[bytes]) -> list[Any]:
    """The topic's records keyed by one of ``keys``, each partition in offset order."""
    c = await kafka_io.consumer(bootstrap)
    try:
        return [
            r
            async for r in kafka_io.read(c, topic, await kafka_io.spans(c, topic))
            if r.key in keys
        ]
    finally:
        await c.stop()


def plain_loop(
    raw: list[Any], settings: Settings
) -> tuple[dict[bytes, bytes], dict[bytes, list[Any]]]:
    """``streams.flow.process`` over the records in batches of 7, entries in a dict: each
    payment's last snapshot and its transitions, in order."""
    s = settings.streams
    entries: dict[bytes, Entry] = {}
    snapshots: dict[bytes, bytes] = {}
    transitions: dict[bytes, list[Any]] = defaultdict(list)
    for i in range(0, len(raw), 7):
        out = flow.process(
            raw[i : i + 7],
            lambda k, m: entries.get(k, Entry()),
            s.dedup_ttl_s * 1000,
            s.max_state_bytes,
            now_ms=int(time.time() * 1000),
        )
        assert not out.dead and not out.reroute
        for key, w in out.payments.items():
            entries[key], snapshots[key] = w.entry, w.snapshot
        for key, t in out.transitions:
            transitions[key].append(comparable(t))
    return snapshots, transitions


def comparable(transition: bytes) -> Any:
    doc = orjson.loads(transition)
    del doc["processed_at_ms"]  # when it ran: the one field a clock writes
    return doc


async def test_the_worker_writes_what_the_plain_loop_of_steps_gives(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    pays = payments(40, seed=4242)
    await send(
        api, requests(pays, settings.providers, seed=4242, duplicate_share=0.3, now=time.time())
    )
    await assert_converged(pg, ch, pays)
    await drained(stack.kafka_bootstrap, pipeline_groups(settings.topics))
    keys = {transaction_key(p.provider, p.external_id).encode() for p in pays}
    t, bootstrap = settings.topics, stack.kafka_bootstrap

    raw = await records(bootstrap, t.raw, keys)
    want_snapshots, want_transitions = plain_loop(raw, settings)

    got_snapshots = {r.key: r.value for r in await records(bootstrap, t.state, keys)}  # last wins
    got_transitions: dict[bytes, list[Any]] = defaultdict(list)
    for r in await records(bootstrap, t.transitions, keys):
        got_transitions[r.key].append(comparable(r.value))

    assert len(raw) > len(pays) and set(want_snapshots) == keys
    assert got_snapshots == want_snapshots
    assert got_transitions == want_transitions
    assert sum(d["outcome"] == "duplicate" for ts in got_transitions.values() for d in ts) > 0
