"""Stream semantics on the real stack: shuffled, duplicated traffic of every provider converges;
the same after a worker SIGKILL; poison records go to the dead-letter topic; checkouts
reconcile amounts."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from domain.model import transaction_key
from domain.records import RawWebhook
from pipeline.settings import Settings
from stack import launcher
from testing.traffic import Payment, Request, payments, requests
from testing.webhooks import SampleEvent, expected_event_id, signed_request
from tests.conftest import RUN_DIR
from tests.integration.waiting import eventually, stack_note


async def send(api: httpx.AsyncClient, reqs: list[Request], concurrency: int = 16) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(r: Request) -> None:
        async with sem:
            resp = await api.post(f"/webhooks/{r.provider}", content=r.body, headers=r.headers)
            assert resp.status_code == 202, resp.text

    await asyncio.gather(*(one(r) for r in reqs))


async def statuses(pg: asyncpg.Pool, pays: list[Payment]) -> dict[str, str]:
    rows = await pg.fetch(
        "SELECT external_id, status FROM transactions WHERE external_id = ANY($1::text[])",
        [p.external_id for p in pays],
    )
    return {r["external_id"]: r["status"] for r in rows}


async def assert_converged(pg: asyncpg.Pool, ch: Any, pays: list[Payment]) -> None:
    want = {p.external_id: p.expected_status for p in pays}

    def differ(got: dict[str, str]) -> str:
        wrong = sorted((k, got.get(k), v) for k, v in want.items() if got.get(k) != v)
        return (
            f"{len(wrong)} of {len(want)} payments not as expected (id, got, want), e.g. "
            f"{wrong[:4]}; {stack_note(RUN_DIR)}"
        )

    got = await eventually(
        lambda: statuses(pg, pays),
        lambda g: g == want,
        timeout=120,
        what="every payment in its expected status",
        show=differ,
    )
    assert got == want
    ids = [p.external_id for p in pays]
    expected_events = sorted(expected_event_id(e) for p in pays for e in p.events)

    async def ch_events() -> list[str]:
        rows = ch.query(
            "SELECT event_id FROM payment_events WHERE external_id IN {ids:Array(String)}",
            parameters={"ids": ids},
        ).result_rows
        return sorted(r[0] for r in rows)

    # one row per distinct provider event, even without FINAL: redeliveries add nothing
    got_events = await eventually(
        ch_events,
        lambda e: len(e) >= len(expected_events),
        timeout=60,
        what="every distinct event in ClickHouse",
    )
    assert got_events == expected_events
    n = await pg.fetchval(
        "SELECT count(*) FROM transaction_events WHERE external_id = ANY($1::text[])", ids
    )
    assert n == len(expected_events)


async def test_shuffled_duplicated_traffic_of_every_provider_converges(
    api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    pays = payments(300, seed=101)
    reqs = requests(pays, settings.providers, seed=101, duplicate_share=0.3, now=time.time())
    assert sum(r.duplicate for r in reqs) > 50
    await send(api, reqs)
    await assert_converged(pg, ch, pays)


async def test_worker_sigkill_mid_stream_leaves_the_exact_state(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    pays = payments(240, seed=202)
    reqs = requests(pays, settings.providers, seed=202, duplicate_share=0.2, now=time.time())
    half = len(reqs) // 2
    await send(api, reqs[:half])
    launcher.stop_part(Path(stack.run_dir), "streams", signal.SIGKILL)
    await send(api, reqs[half:])  # ingest keeps accepting while the worker is down
    await asyncio.to_thread(launcher.start_part, Path(stack.run_dir), "streams")
    await assert_converged(pg, ch, pays)


async def test_poison_record_goes_to_the_dlq_and_the_rest_flows(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    marker = uuid.uuid4().hex
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:  # a record without the envelope headers, and an authentic-looking but senseless one
        await producer.send_and_wait(settings.topics.raw, b"\x00\xffpoison", key=marker.encode())
        await producer.send_and_wait(
            settings.topics.raw,
            b'{"event": {"id": "e1", "type": "charge:teleported", "data": {"id": "c1"}}}',
            key=marker.encode(),
            headers=[("id", marker.encode()), ("provider", b"coinbase"), ("received-at-ms", b"1")],
        )
    finally:
        await producer.stop()
    pays = payments(12, seed=303)
    await send(api, requests(pays, settings.providers, seed=303, now=time.time()))
    await assert_converged(pg, ch, pays)

    consumer = AIOKafkaConsumer(
        settings.topics.dlq,
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(found) < 2 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if r.key == marker.encode():
                        found.append(orjson.loads(r.value))
    finally:
        await consumer.stop()
    assert len(found) == 2
    assert {d["stage"] for d in found} == {"normalize"}
    reasons = " ".join(d["reason"] for d in found)
    assert "not a raw webhook record" in reasons and "charge:teleported" in reasons

    async def dead_rows() -> int:
        return int(
            ch.query(
                "SELECT count() FROM dead_letters WHERE reason LIKE '%teleported%'"
            ).result_rows[0][0]
        )

    await eventually(dead_rows, lambda n: n >= 1, what="the dead letter in ClickHouse")


async def register_checkout(api: httpx.AsyncClient, ext: str, amount: str) -> None:
    """``POST /checkouts`` for a standard payment in USDC, accepted."""
    r = await api.post(
        "/checkouts",
        json={
            "provider": "standard",
            "external_id": ext,
            "order_id": f"o-{ext}",
            "amount": amount,
            "currency": "USDC",
        },
    )
    assert r.status_code == 202, r.text


async def test_checkout_reconciles_underpaid_and_overpaid(
    api: httpx.AsyncClient, pg: asyncpg.Pool, settings: Settings
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    cases = {
        "underpaid": Decimal("90.00"),
        "overpaid": Decimal("110.00"),
        "completed": Decimal("100.00"),
    }
    evs = {}
    for expected, paid in cases.items():
        ext = f"chk-{uuid.uuid4().hex[:10]}"
        await register_checkout(api, ext, "100.00")
        ev = SampleEvent("standard", ext, "completed", paid, "USDC", now, f"evt-{ext}", f"o-{ext}")
        body, headers = signed_request(ev, settings.providers, time.time())
        assert (
            await api.post("/webhooks/standard", content=body, headers=headers)
        ).status_code == 202
        evs[expected] = ev
    for expected, ev in evs.items():

        async def row(ev: SampleEvent = ev) -> Any:
            return await pg.fetchrow(
                "SELECT status, expected_amount, version FROM transactions "
                "WHERE provider = 'standard' AND external_id = $1",
                ev.external_id,
            )

        got = await eventually(
            row, lambda r: r is not None and r["version"] == 2, what=f"{expected} row"
        )
        assert got["status"] == expected and got["expected_amount"] == Decimal("100.00")
        assert (
            await pg.fetchval(
                "SELECT count(*) FROM checkouts WHERE external_id = $1", ev.external_id
            )
            == 1
        )


async def test_the_earliest_of_two_checkout_registrations_wins_everywhere(
    api: httpx.AsyncClient, pg: asyncpg.Pool, settings: Settings
) -> None:
    """The two registrations travel through different raw partitions: whichever the workers
    see first, the earliest one sets the expected amount, and the later one is overruled."""
    ext = f"chk-{uuid.uuid4().hex[:10]}"
    for amount in ("100.00", "50.00"):
        await register_checkout(api, ext, amount)
        time.sleep(0.005)  # distinct receipt milliseconds: the first request is the earliest

    async def row() -> Any:
        return await pg.fetchrow(
            "SELECT t.status, t.expected_amount, t.version, c.amount AS registered "
            "FROM transactions t JOIN checkouts c USING (provider, external_id) "
            "WHERE provider = 'standard' AND external_id = $1",
            ext,
        )

    got = await eventually(row, lambda r: r is not None and r["version"] == 2, what="the row")
    assert got["expected_amount"] == got["registered"] == Decimal("100.00")
    assert got["status"] == "new"


async def test_raw_records_are_keyed_by_payment_and_old_uuid_keyed_ones_are_rerouted(
    stack: launcher.StackInfo, api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    """Ingest keys each raw record by its payment (decision 0007); a record keyed as before
    (by its own id, in whatever partition that hashes to) is re-routed and still applied."""
    pays = payments(12, seed=1313)
    reqs = requests(pays, settings.providers, seed=1313, now=time.time())
    old, new = reqs[: len(reqs) // 2], reqs[len(reqs) // 2 :]
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:  # the first half as the old ingest wrote it: keyed by a fresh raw id
        for r in old:
            raw_id = uuid.uuid4().hex
            raw = RawWebhook(raw_id, r.provider, int(time.time() * 1000), r.body, r.headers)
            await producer.send_and_wait(
                settings.topics.raw, r.body, key=raw_id.encode(), headers=raw.to_kafka_headers()
            )
    finally:
        await producer.stop()
    await send(api, new)
    await assert_converged(pg, ch, pays)

    consumer = AIOKafkaConsumer(
        settings.topics.raw,
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    keys: dict[bytes, int] = {}
    try:
        ends = await consumer.end_offsets(
            [TopicPartition(settings.topics.raw, p) for p in range(settings.topics.partitions)]
        )
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for rec in records:
                    keys[rec.key or b""] = keys.get(rec.key or b"", 0) + 1
    finally:
        await consumer.stop()
    mine = {transaction_key(p.provider, p.external_id).encode() for p in pays}
    assert mine <= set(keys)  # every payment's records under its key, old ones re-routed
    rerouted = sum(keys[k] for k in mine)
    assert rerouted == len(old) + len(new)
