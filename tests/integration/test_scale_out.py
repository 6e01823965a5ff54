"""Scale-out, measured: two stream workers on topics with 4 partitions, one SIGKILLed under load.

The same traffic (twin payments: the same chains, shuffle and redeliveries under other ids) goes
once through one worker, then through two workers of which one is killed with SIGKILL a few
seconds into the load. The survivor must take over the dead one's partitions (and their table
partitions), and the end state in Postgres and ClickHouse must equal the one-worker run field
for field, and the expected end state; the survivor must also commit what it processed (its
consumer group reaches the end offsets). The takeover time, from the SIGKILL until the
survivor produced its first output for each of the dead worker's partitions, goes to
.run/scale-out.json (docs/scaling.md quotes it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from bench.loadgen import run as load
from pipeline.settings import Settings
from stack import launcher, proc, services
from stack.drain import NotDrained, pipeline_groups, wait_drained
from streams import READY_LINE
from testing.traffic import Payment, payments, requests
from tests.integration.test_stream_semantics import assert_converged, statuses

PAYMENTS = 240  # about 780 webhooks per run
RATE = 35.0  # webhooks per second while one worker is killed: about 22 s of load
KILL_AFTER_S = 5.0
FIGURES = Path(__file__).resolve().parents[2] / ".run" / "scale-out.json"


def twin(p: Payment, suffix: str) -> Payment:
    """The same payment under other ids: same chain, amounts and timestamps."""
    ext = p.external_id + suffix
    events = tuple(
        dataclasses.replace(
            e,
            external_id=ext,
            event_id=e.event_id.replace(p.external_id, ext),
            order_id=e.order_id.replace(p.external_id, ext),
        )
        for e in p.events
    )
    return Payment(p.provider, ext, events)


async def members(bootstrap: str, group: str, topic: str) -> tuple[str, dict[str, list[int]]]:
    """The group's state and, per member id, the partitions of ``topic`` it holds."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [resp] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    [g] = resp.groups
    state, held = g[2], {}
    for m in g[5]:
        member_id, assignment = m[0], m[4]
        parts: list[int] = []
        if assignment:
            for t, ps in ConsumerProtocolMemberAssignment.decode(assignment).assignment:
                if t == topic:
                    parts += ps
        held[member_id] = sorted(parts)
    return state, held


async def until_members(
    bootstrap: str, group: str, topic: str, n: int, timeout: float = 90
) -> dict[str, list[int]]:
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        seen = await members(bootstrap, group, topic)
        state, held = seen
        if state == "Stable" and len(held) == n and all(held.values()):
            return held
        await asyncio.sleep(0.5)
    raise AssertionError(f"group {group} never had {n} members holding {topic}: {seen}")


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(4)]
        return {tp.partition: off for tp, off in (await c.end_offsets(tps)).items()}
    finally:
        await c.stop()


async def outputs_after(
    bootstrap: str, topic: str, start: dict[int, int]
) -> dict[int, list[tuple[int, int]]]:
    """Per partition, (offset, processed_at_ms) of every transition from ``start`` to the end."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in start]
        c.assign(tps)
        ends = await c.end_offsets(tps)
        for tp in tps:
            c.seek(tp, start[tp.partition])
        out: dict[int, list[tuple[int, int]]] = {tp.partition: [] for tp in tps}
        while [tp for tp in tps if await c.position(tp) < ends[tp]]:
            for tp, records in (await c.getmany(timeout_ms=1000)).items():
                out[tp.partition] += [
                    (r.offset, int(orjson.loads(r.value)["processed_at_ms"]))
                    for r in records
                    if r.offset < ends[tp]
                ]
        return out
    finally:
        await c.stop()


def spawn_worker(stack: launcher.StackInfo, name: str) -> subprocess.Popen[bytes]:
    """One more ``pipeline-streams`` of this stack: own RocksDB folder, no metrics port."""
    run = Path(stack.run_dir)
    env = {
        **launcher.service_env(stack),
        "PIPELINE_STREAMS__DATA_DIR": str(run / f"{name}-data"),
        "PIPELINE_STREAMS__METRICS_PORT": "0",
    }
    log = run / "logs" / f"{name}.log"
    child = proc.spawn([sys.executable, "-m", "streams.main"], log, env=env, cwd=services.REPO)
    proc.wait_until(name, lambda: READY_LINE in log.read_text(errors="replace"), child, log, 120)
    return child


async def end_state(pg: asyncpg.Pool, ch: Any, pays: list[Payment], suffix: str) -> Any:
    """The payments' end state and their events' facts, ids written without ``suffix`` (rows
    start with ``event_id`` or ``provider``, then ``provider``). Left out: times of receipt
    and processing, and the history of the processing (an event's from/to status, the version
    it produced), which follows the arrival order: that differs between two sends of the same
    traffic, with one worker as with two."""
    ids = [p.external_id for p in pays]
    tx = await pg.fetch(
        "SELECT provider, provider, external_id, status, amount, currency, order_id, "
        "expected_amount, "
        "expected_currency, late, version FROM transactions WHERE external_id = ANY($1::text[]) "
        "ORDER BY provider, external_id",
        ids,
    )
    ev = await pg.fetch(
        "SELECT event_id, provider, external_id, status, provider_status, amount, currency, "
        "occurred_at FROM transaction_events "
        "WHERE external_id = ANY($1::text[]) ORDER BY event_id",
        ids,
    )
    chr_ = ch.query(
        "SELECT event_id, provider, external_id, status, provider_status, amount, currency, "
        "order_id, occurred_at FROM payment_events FINAL "
        "WHERE external_id IN {ids:Array(String)} ORDER BY provider, event_id",
        parameters={"ids": ids},
    ).result_rows

    def plain(row: Any) -> tuple[Any, ...]:
        # CoinPayments' IPN carries no time of its own: its events occur when they are received
        timed = row[1] == "coinpayments"
        return tuple(
            v.replace(suffix, "")
            if isinstance(v, str)
            else None
            if timed and isinstance(v, datetime)
            else v
            for v in row
        )

    return (
        sorted(plain(tuple(r)) for r in tx),
        sorted(plain(tuple(r)) for r in ev),
        sorted(plain(r) for r in chr_),
    )


async def test_two_workers_one_killed_under_load_same_end_state(
    stack: launcher.StackInfo, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    t, group = settings.topics, settings.streams.app_id
    bootstrap, groups = stack.kafka_bootstrap, pipeline_groups(settings)
    assert t.partitions == 4
    started = time.monotonic()
    seed = 4242 + int(time.time()) % 1000
    base = payments(PAYMENTS, seed=seed)
    one = [twin(p, "-1w") for p in base]  # through one worker
    two = [twin(p, "-2w") for p in base]  # through two workers, one killed

    # one worker
    one_reqs = requests(one, settings.providers, seed, 0.2, time.time(), 40)
    res = await load(stack.ingest_url, one_reqs, None, 16, retry_503=True)
    assert res.codes.get(202, 0) == len(one_reqs), res.summary()
    await wait_drained(bootstrap, groups, timeout=90)

    [survivor] = (await until_members(bootstrap, group, t.raw, 1)).keys()
    extra = spawn_worker(stack, "streams-2")
    try:
        held = await until_members(bootstrap, group, t.raw, 2)
        [victim] = [m for m in held if m != survivor]
        dead_parts, own_parts = held[victim], held[survivor]

        two_reqs = requests(two, settings.providers, seed, 0.2, time.time(), 40)
        running = asyncio.create_task(load(stack.ingest_url, two_reqs, RATE, 200, retry_503=True))
        await asyncio.sleep(KILL_AFTER_S)
        at_kill = await end_offsets(bootstrap, t.transitions)
        killed_ms = time.time() * 1000
        os.killpg(extra.pid, signal.SIGKILL)
        extra.wait()
        res = await running
        assert res.codes.get(202, 0) == len(two_reqs), res.summary()
        after = await until_members(bootstrap, group, t.raw, 1)
        assert after == {survivor: [0, 1, 2, 3]}
    finally:
        if extra.poll() is None:
            os.killpg(extra.pid, signal.SIGKILL)
            extra.wait()

    try:
        # the same end state as with one worker, and the expected one
        await assert_converged(pg, ch, two)
        await wait_drained(bootstrap, groups[1:], timeout=60)  # the sinks wrote all there is
        got_one = await end_state(pg, ch, one, "-1w")
        got_two = await end_state(pg, ch, two, "-2w")
        for name, a, b in zip(
            ("transactions", "transaction_events", "payment_events"), got_one, got_two, strict=True
        ):
            assert len(a) == len(b), name
            diff = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
            assert not diff, f"{name}: {len(diff)} rows differ, e.g. one worker / two: {diff[:3]}"
        # and the survivor committed what it processed: its group reached the end offsets
        commits_s = await wait_drained(bootstrap, groups[:1], timeout=60)
    except (AssertionError, NotDrained) as exc:
        try:  # what the survivor left behind, to name in the failure
            await wait_drained(bootstrap, groups[:1], timeout=0)
            behind = "the survivor's group is at the end offsets"
        except NotDrained as lag:
            behind = f"the survivor's group: {lag}"
        want = {p.external_id: p.expected_status for p in two}
        got = await statuses(pg, two)
        wrong = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        behind += f"; payments not as expected (got, want): {sorted(wrong.items())[:8]}"
        # leave later tests a worker that reads every partition from its committed offset
        await asyncio.to_thread(launcher.restart_part, Path(stack.run_dir), "streams")
        raise AssertionError(f"{behind}; {str(exc)[:300]}") from exc

    # takeover: the survivor's first output on each partition the dead worker held
    out = await outputs_after(bootstrap, t.transitions, at_kill)
    first = {p: min((ms for _, ms in out[p] if ms > killed_ms), default=None) for p in out}
    assert all(first[p] is not None for p in dead_parts), (first, dead_parts)
    takeover_s = max(first[p] - killed_ms for p in dead_parts) / 1000  # type: ignore[operator]
    pauses = {}
    for p in own_parts:  # the survivor's own partitions stop too while the group rebalances
        times = sorted(ms for _, ms in out[p] if ms > killed_ms)
        pauses[p] = max((b - a for a, b in itertools.pairwise(times)), default=0) / 1000

    figures = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, load {os.getloadavg()[0]:.1f}",
        "partitions": t.partitions,
        "webhooks_per_run": len(two_reqs),
        "rate_per_s": RATE,
        "dead_worker_partitions": dead_parts,
        "takeover_s": round(takeover_s, 2),
        "per_partition_s": {
            p: round((first[p] - killed_ms) / 1000, 2)  # type: ignore[operator]
            for p in dead_parts
        },
        "survivor_own_partitions_max_pause_s": {p: round(v, 2) for p, v in pauses.items()},
        "session_timeout_s": 10.0,  # broker_session_timeout in streams/faust_app.py
        "survivor_commits_reached_the_end_s": round(commits_s, 1),
        "test_s": round(time.monotonic() - started, 1),
    }
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
    assert takeover_s < 45, figures
