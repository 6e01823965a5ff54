"""A payment by the provider's human reference (Coinbase: the charge ``code``), not its id.

Postgres history rows carry the reference when the stream records do; otherwise the raw
webhooks tell it (the source of truth): their bodies are read for the reference, which costs
a scan of ``webhooks.raw``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from ops import kafka_io
from ops.errors import OpsError

REFERENCE_SQL = """SELECT external_id FROM transaction_events
WHERE provider = $1 AND reference = $2 LIMIT 1"""


def _coinbase(body: dict[str, Any], reference: str) -> str | None:
    """The charge id (or code, as the normalizer takes it) of a charge with this code."""
    charge = (body.get("event") or {}).get("data") or {}
    if isinstance(charge, dict) and charge.get("code") == reference:
        found = charge.get("id") or charge.get("code")
        return str(found) if found else None
    return None


#: providers whose payloads carry a human reference beside the payment id
RESOLVERS: dict[str, Callable[[dict[str, Any], str], str | None]] = {"coinbase": _coinbase}


async def from_postgres(dsn: str, provider: str, reference: str) -> str | None:
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise OpsError(f"Postgres unreachable: {type(exc).__name__}") from None
    try:
        found: str | None = await conn.fetchval(REFERENCE_SQL, provider, reference)
    except asyncpg.UndefinedColumnError:  # a database the sinks have not migrated yet
        found = None
    finally:
        await conn.close()
    return found


async def from_raw(bootstrap: str, topic: str, provider: str, reference: str) -> str | None:
    resolve = RESOLVERS.get(provider)
    if resolve is None:
        return None
    c = await kafka_io.consumer(bootstrap)
    try:
        async for r in kafka_io.read(c, topic, await kafka_io.spans(c, topic)):
            headers = dict(r.headers or [])
            if headers.get("provider") != provider.encode() or reference.encode() not in r.value:
                continue
            try:
                body = orjson.loads(r.value)
            except orjson.JSONDecodeError:
                continue
            if isinstance(body, dict) and (found := resolve(body, reference)):
                return found
    finally:
        await c.stop()
    return None


async def resolve(dsn: str, bootstrap: str, raw_topic: str, provider: str, ref: str) -> str | None:
    """The payment id behind a provider's reference, or None."""
    return await from_postgres(dsn, provider, ref) or await from_raw(
        bootstrap, raw_topic, provider, ref
    )
