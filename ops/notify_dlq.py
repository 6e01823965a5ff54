"""Merchant notifications given up: read them from ``[notify] dlq_topic``, put chosen ones
back into the outbox (``pipeline notify redrive``).

A redrive makes the delivery pending again with a fresh attempt count and give-up clock, the
same ``webhook-id`` and body. A delivery whose payment already had a newer version delivered
to that endpoint is skipped (it would reach the receiver after the newer one) unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import orjson

from domain.records import DeadLetter
from ops import dlq
from ops.errors import OpsError

REDRIVE = """
INSERT INTO notify_outbox AS o (webhook_id, endpoint, provider, external_id, version, status,
    body)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (webhook_id) DO UPDATE SET state = 'pending', attempts = 0, due_at = now(),
    created_at = now(), leased_until = NULL, finished_at = NULL
WHERE o.state = 'dead'
"""

NEWER = """
SELECT 1 FROM notify_outbox WHERE endpoint = $1 AND provider = $2 AND external_id = $3
    AND version > $4 AND state = 'delivered' LIMIT 1
"""


@dataclass(frozen=True)
class Redriven:
    back: list[str]
    skipped: list[str]  # superseded by a newer version already delivered


async def load(bootstrap: str, topic: str) -> list[DeadLetter]:
    return [d for d in await dlq.load(bootstrap, topic) if d.stage == "notify"]


def delivery(d: DeadLetter) -> dict[str, object]:
    """The delivery a notification dead letter carries (its value)."""
    if not d.value:
        raise OpsError(f"dead letter {d.id} carries no delivery")
    doc = orjson.loads(d.value)
    if not isinstance(doc, dict):
        raise OpsError(f"dead letter {d.id} carries no delivery")
    return doc


async def redrive(dsn: str, letters: list[DeadLetter], force: bool = False) -> Redriven:
    conn = await asyncpg.connect(dsn)
    back, skipped = [], []
    try:
        for d in letters:
            x = delivery(d)
            args = (x["endpoint"], x["provider"], x["external_id"], x["version"])
            if not force and await conn.fetchval(NEWER, *args):
                skipped.append(d.id)
                continue
            body = str(x["body"]).encode()
            await conn.execute(REDRIVE, x["webhook_id"], *args, x["status"], body)
            back.append(d.id)
    finally:
        await conn.close()
    return Redriven(back, skipped)
