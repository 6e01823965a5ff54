"""Read side for ``GET /transactions``: the Postgres row the sinks wrote, with its history,
and the two routes of the merchant API that answer it (a contract: they stay on ingest)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import asyncpg
from litestar import get
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, PathParameter, QueryParameter

from domain.model import PROVIDERS
from ingest import openapi as doc
from ingest.auth import api_guard

Provider = Annotated[
    str, PathParameter(description="one of the six providers", schema_extra=doc.PROVIDER_ENUM)
]

#: the normalizers refuse longer ids (domain/providers/_json.py), so none is ever stored
MAX_ID_CHARS = 512
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

ROW = """SELECT provider, external_id, status, amount::text AS amount, currency, order_id,
       version, late, updated_at, expected_amount::text AS expected_amount
FROM transactions WHERE provider = $1 AND external_id = $2"""

HISTORY = """SELECT event_id, status, effective_status, applied, note, provider_status,
       amount::text AS amount, currency, occurred_at, received_at
FROM transaction_events WHERE provider = $1 AND external_id = $2
ORDER BY occurred_at, event_id"""

#: history rows carry the provider's human reference (Coinbase: the charge code), if any
BY_REFERENCE = """SELECT external_id FROM transaction_events
WHERE provider = $1 AND reference = $2 ORDER BY version LIMIT 1"""

_DOWN = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


class TransactionsUnavailable(Exception):
    """Postgres did not answer: the caller should retry later (503)."""


def storable(external_id: str) -> bool:
    """Could a payment have this id? Not with NUL (Postgres text cannot hold it), a lone
    surrogate (not encodable as UTF-8), or more characters than a normalizer accepts."""
    return len(external_id) <= MAX_ID_CHARS and not _UNSTORABLE.search(external_id)


async def fetch_transaction(
    pool: asyncpg.Pool, provider: str, external_id: str
) -> dict[str, Any] | None:
    try:
        async with pool.acquire(timeout=5) as conn:
            row = await conn.fetchrow(ROW, provider, external_id, timeout=5)
            if row is None:
                return None
            events = await conn.fetch(HISTORY, provider, external_id, timeout=5)
    except _DOWN as exc:
        raise TransactionsUnavailable(type(exc).__name__) from exc
    out = dict(row)
    out["events"] = [dict(e) for e in events]
    return out


async def find_by_reference(
    pool: asyncpg.Pool, provider: str, reference: str
) -> dict[str, Any] | None:
    try:
        external_id = await pool.fetchval(BY_REFERENCE, provider, reference, timeout=5)
    except _DOWN as exc:
        raise TransactionsUnavailable(type(exc).__name__) from exc
    return None if external_id is None else await fetch_transaction(pool, provider, external_id)


@get(
    "/transactions/{provider:str}/{external_id:str}",
    guards=[api_guard],
    security=doc.BEARER,
    responses={**doc.transaction(), **doc.errors(400, 401, 404, 503, auth=True)},
)
async def get_transaction(
    provider: Provider,
    external_id: FromPath[str],
    state: State,
) -> dict[str, Any]:
    return await _transaction(state, provider, external_id=external_id)


@get(
    "/transactions",
    guards=[api_guard],
    security=doc.BEARER,
    responses={**doc.transaction(), **doc.errors(400, 401, 404, 503, auth=True)},
)
async def find_transaction(
    provider: Annotated[str, QueryParameter(description="one of the six providers")],
    reference: Annotated[
        str, QueryParameter(description="the provider's human reference (Coinbase: charge code)")
    ],
    state: State,
) -> dict[str, Any]:
    """A payment by the provider's human reference instead of its id."""
    return await _transaction(state, provider, reference=reference)


async def _transaction(
    state: State, provider: str, external_id: str = "", reference: str = ""
) -> dict[str, Any]:
    if provider not in PROVIDERS:
        raise NotFoundException(detail=f"unknown provider {provider[:40]!r}")
    if not storable(external_id or reference):  # NUL, lone surrogates, too long: no such id
        raise NotFoundException(detail="no such transaction")
    pool = await _pool(state)
    try:
        if reference:
            tx = await find_by_reference(pool, provider, reference)
        else:
            tx = await fetch_transaction(pool, provider, external_id)
    except TransactionsUnavailable as exc:
        raise HTTPException(
            status_code=503, detail=f"database unavailable: {exc}", headers={"Retry-After": "5"}
        ) from None
    if tx is None:
        raise NotFoundException(detail="no such transaction")
    return tx


async def _pool(state: State) -> asyncpg.Pool:
    if state.get("pool") is None:
        try:
            state.pool = await asyncpg.create_pool(state.pg_dsn, min_size=1, max_size=4, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            raise HTTPException(
                status_code=503, detail="database unavailable", headers={"Retry-After": "5"}
            ) from exc
    pool: asyncpg.Pool = state.pool
    return pool
