"""Rebuild: all state again from ``webhooks.raw`` alone, into a scratch database, then compare.

The raw topic is the source of truth. This reads all of it, runs the same pure steps the
stream workers run (normalize, dedupe, state machine), writes the result with the same
Postgres sink into a scratch database, and reports whether it matches the live Postgres
(every transaction) and the live ClickHouse (every distinct event). The scratch database is
dropped afterwards, whatever happened.

Compared are the columns that do not depend on the order in which events arrived: a
payment's final state, and each event's own fields. An event's transition (from, to, the
version it produced) depends on arrival order, so it is not compared.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import clickhouse_connect

from domain.records import SNAPSHOT, TRANSITION, Entry, Snapshot, Transition
from ops import kafka_io
from ops.errors import OpsError
from ops.phases import timed
from sinks.postgres import PostgresSink
from streams import flow

COMPARED = "provider, external_id, status, amount, currency, version, expected_amount"
#: an event's own fields in ClickHouse ``payment_events``
CH_COMPARED = (
    "event_id, provider, external_id, status, provider_status, amount, currency, "
    "toUnixTimestamp64Milli(occurred_at)"
)

Rows = dict[tuple[str, str], tuple[Any, ...]]


@dataclass
class Report:
    raw_records: int = 0
    dead_letters: int = 0
    rebuilt: int = 0
    live: int = 0
    matched: int = 0
    events_rebuilt: int = 0
    events_live: int = 0
    events_matched: int = 0
    differences: list[str] = field(default_factory=list)
    database: str = ""
    #: wall seconds of each phase (read, fold, write, compare): where a slow rebuild's time went
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def match(self) -> bool:
        return (
            not self.differences
            and self.rebuilt == self.live
            and self.events_rebuilt == self.events_live
        )


@dataclass
class _Raw:
    """A raw record as read back, in the shape ``flow.process`` reads (its ``Message``)."""

    value: bytes | None
    headers: Any
    offset: int
    topic: str = "webhooks.raw"
    partition: int = 0
    key: bytes | None = None


def fold_raw(
    records: list[tuple[bytes, list[tuple[str, bytes]]]],
    ttl_ms: int,
    max_state_bytes: int,
    batch: int = 500,
) -> tuple[dict[bytes, bytes], list[Transition], int]:
    """The worker's own chain (``streams.flow.process``) over raw records, batch by batch:
    each payment's last ``payments.state`` snapshot by payment key, the transition of each
    distinct event as first applied, and the dead-letter count. Records are taken as keyed
    by their payment (a rebuild reads them all, so re-routing has nothing to add)."""
    entries: dict[bytes, Entry] = {}
    snapshots: dict[bytes, bytes] = {}
    transitions: list[Transition] = []
    dead = 0
    for start in range(0, len(records), batch):
        chunk = [_Raw(v, h, start + i) for i, (v, h) in enumerate(records[start : start + batch])]
        out = flow.process(
            chunk,
            lambda key, m: entries.get(key, Entry()),
            ttl_ms,
            max_state_bytes,
            now_ms=0,
            rerouting=False,
        )
        entries.update((key, w.entry) for key, w in out.payments.items())
        snapshots.update((key, w.snapshot) for key, w in out.payments.items())
        docs = (TRANSITION.decode(v) for _, v in out.transitions)
        transitions += (d for d in docs if d.outcome != "duplicate")
        dead += len(out.dead)
    return snapshots, transitions, dead


def _with_db(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(_with_db(dsn, "postgres"), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise OpsError(f"Postgres unreachable: {type(exc).__name__}") from None


async def _fresh_database(dsn: str, name: str) -> str:
    conn = await _admin(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_db(dsn, name)


async def _drop_database(dsn: str, name: str) -> None:
    conn = await _admin(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _rows(dsn: str) -> Rows:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(f"SELECT {COMPARED} FROM transactions")
    finally:
        await conn.close()
    return {(r["provider"], r["external_id"]): tuple(r) for r in rows}


def _live_events(clickhouse_url: str) -> Rows:
    try:
        ch = clickhouse_connect.get_client(dsn=clickhouse_url)
        rows = ch.query(f"SELECT {CH_COMPARED} FROM payment_events FINAL").result_rows
    except Exception as exc:  # clickhouse-connect raises several types for "unreachable"
        raise OpsError(f"ClickHouse unreachable: {type(exc).__name__}") from None
    return {(r[1], r[0]): _event(*r) for r in rows}


def _event(event_id: str, provider: str, external_id: str, *rest: Any) -> tuple[Any, ...]:
    status, provider_status, amount, currency, occurred_ms = rest
    return (
        event_id,
        provider,
        external_id,
        status,
        provider_status,
        None if amount is None else Decimal(amount),
        currency,
        None if occurred_ms is None else int(occurred_ms),
    )


def _rebuilt_events(transitions: list[Transition]) -> Rows:
    """Each distinct event as first applied, by (provider, event id). Its value is a tuple of
    rows, one per payment that claims the event id: a provider that reuses an event id for
    two payments (hostile, or broken) gets both applied, each in its own payment, but
    ClickHouse keeps one row per (provider, event id), whichever was written last, an
    arrival order. The live row then matches one of them."""
    out: dict[tuple[str, str], dict[str, tuple[Any, ...]]] = {}
    for t in transitions:
        # without a provider time (CoinPayments) an event's time is its first receipt: which
        # delivery the worker saw first, an arrival order, so not compared
        ms = int(t.occurred_at.timestamp() * 1000) if t.provider_time else None
        row = _event(
            t.event_id,
            t.provider,
            t.external_id,
            t.status.value,
            t.provider_status,
            t.amount,
            t.currency,
            ms,
        )
        out.setdefault((t.provider, t.event_id), {}).setdefault(t.external_id, row)
    return {key: tuple(claims.values()) for key, claims in out.items()}


def _same_event(a: tuple[Any, ...] | None, b: tuple[Any, ...] | None) -> bool:
    """The live row ``b`` is one of the rebuilt claims ``a`` (``_rebuilt_events``); a claim
    without a time of the provider's own matches whatever receipt time the live one has."""
    if a is None or b is None:
        return a is b
    return any(b == claim or (claim[-1] is None and claim == (*b[:-1], None)) for claim in a)


def _compare(
    rebuilt: Rows,
    live: Rows,
    what: str,
    differences: list[str],
    same: Callable[[tuple[Any, ...] | None, tuple[Any, ...] | None], bool] = operator.eq,
) -> int:
    """How many keys match; a line per difference."""
    matched = 0
    for key in sorted(set(rebuilt) | set(live)):
        a, b = rebuilt.get(key), live.get(key)
        if same(a, b):
            matched += 1
        else:
            differences.append(f"{what} {key[0]}/{key[1]}: rebuilt {a} live {b}")
    return matched


async def _read_raw(
    bootstrap: str, raw_topic: str, progress: Callable[[int], None]
) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    c = await kafka_io.consumer(bootstrap)
    records: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    try:
        async for r in kafka_io.read(c, raw_topic, await kafka_io.spans(c, raw_topic)):
            records.append((r.value or b"", list(r.headers or [])))
            if len(records) % 1000 == 0:
                progress(1000)
    finally:
        await c.stop()
    progress(len(records) % 1000)
    return records


async def _write(dsn: str, snapshots: list[bytes], transitions: list[Transition]) -> None:
    """Through the live Postgres sink, in batches as it gets them from Kafka."""
    records: list[Snapshot | Transition] = [SNAPSHOT.decode(v) for v in snapshots]
    records += transitions
    sink = PostgresSink(dsn, "payments.transitions")
    await sink.start()
    try:
        for i in range(0, len(records), 1000):
            await sink.write(records[i : i + 1000])
    finally:
        await sink.close()


async def rebuild(
    bootstrap: str,
    raw_topic: str,
    dsn: str,
    clickhouse_url: str,
    ttl_ms: int,
    max_state_bytes: int,
    progress: Callable[[int], None] = lambda n: None,
) -> Report:
    report = Report()
    with timed(report.seconds, "read"):
        records = await _read_raw(bootstrap, raw_topic, progress)
    report.raw_records = len(records)
    with timed(report.seconds, "fold"):
        snapshots, transitions, report.dead_letters = fold_raw(records, ttl_ms, max_state_bytes)
    del records  # 300 MB for 200,000 webhooks: the write needs only what the fold made
    name = f"{urlsplit(dsn).path.lstrip('/') or 'pipeline'}_rebuild_{os.getpid()}"
    report.database = name
    try:
        with timed(report.seconds, "write"):
            fresh = await _fresh_database(dsn, name)
            await _write(fresh, list(snapshots.values()), transitions)
        with timed(report.seconds, "compare"):
            rebuilt, live = await _rows(fresh), await _rows(dsn)
            events, live_events = _rebuilt_events(transitions), _live_events(clickhouse_url)
    finally:
        await _drop_database(dsn, name)
    with timed(report.seconds, "compare"):
        report.rebuilt, report.live = len(rebuilt), len(live)
        report.matched = _compare(rebuilt, live, "postgres", report.differences)
        report.events_rebuilt, report.events_live = len(events), len(live_events)
        report.events_matched = _compare(
            events, live_events, "clickhouse", report.differences, _same_event
        )
    return report
