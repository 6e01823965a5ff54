"""The outbox's claim on the real Postgres, in a scratch schema: a backlog in a table whose
statistics say it is small (new, never analyzed: what a fresh stack or a sudden burst looks
like) is claimed oldest version first, and the head-of-line check reads the payment's own rows
(notify_outbox_head), never the endpoint's whole backlog (decision 0160)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson

from notify import outbox
from notify.outbox import Outcome

URL = "http://shop.test/hooks"
BACKLOG = 5000


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


async def test_claim_checks_the_head_of_line_by_payment_on_a_fresh_backlog(
    pg: asyncpg.Pool,
) -> None:
    schema = f"outbox_{uuid.uuid4().hex[:8]}"
    async with pg.acquire() as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        try:
            await conn.execute(f"SET search_path TO {schema}")
            await outbox.migrate(conn)
            rows = [(f"w{i}", URL, "coinbase", f"p{i}", 1, "paid", b"{}") for i in range(BACKLOG)]
            rows += [(f"v{v}", URL, "coinbase", "p-versions", v, "paid", b"{}") for v in (3, 1, 2)]
            await conn.executemany(
                "INSERT INTO notify_outbox (webhook_id, endpoint, provider, external_id, version,"
                " status, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                rows,
            )
            # the backlog delivered 500 at a time: each payment's versions come one by one
            versions: list[int] = []
            explain = None
            while got := await outbox.claim(conn, URL, 500, 60.0):
                versions += [c.version for c in got if c.external_id == "p-versions"]
                done = [Outcome(c.webhook_id, 204, "delivered", 0.0, None) for c in got]
                await outbox.finish(conn, done)
                if len(versions) == 1:  # mid-backlog, with delivered rows behind the scan
                    explain = await conn.fetchval(
                        "EXPLAIN (ANALYZE, FORMAT JSON) " + outbox.CLAIM, URL, 32, 0.0
                    )
            assert versions == [1, 2, 3]
            pending = "SELECT count(*) FROM notify_outbox WHERE state <> 'delivered'"
            assert await conn.fetchval(pending) == 0

            assert explain is not None
            plan = orjson.loads(explain)[0]["Plan"]
            heads = [n for n in nodes(plan) if n.get("Subplan Name", "").startswith("SubPlan")]
            assert heads, plan
            read = {n.get("Index Name") for h in heads for n in nodes(h)} - {None}
            assert read == {"notify_outbox_head"}, read
        finally:
            await conn.execute("RESET search_path")
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
