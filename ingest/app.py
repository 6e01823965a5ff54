"""The ingest HTTP app, built by ``create_app(settings)``; nothing connects at import time."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
import msgspec
import structlog
from litestar import Litestar, Request, Response, get, post
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED

from ingest import metrics
from ingest.dashboard.routes import Dashboard
from ingest.errors import BrokerUnavailable
from ingest.intake import Unreadable, WrongMediaType, check_content_type, check_readable
from ingest.middleware import RequestIdMiddleware
from ingest.transactions import fetch_transaction
from ingest.verify.base import SignatureError, Verifier
from ingest.verify.nowpayments import NOT_JSON
from ingest.verify.registry import build_verifiers
from ingest.writer import RawWriter, Writer
from pipeline.envelope import KIND_CHECKOUT, RawWebhook
from pipeline.settings import Settings
from streams.model import PROVIDERS

log = structlog.get_logger("ingest")


class CheckoutIn(msgspec.Struct, forbid_unknown_fields=True):
    provider: str
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    amount: Annotated[str, msgspec.Meta(pattern=r"^\d{1,18}(\.\d{1,18})?$")]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{2,16}$")]


def _headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _write(state: State, raw: RawWebhook) -> Response[dict[str, str]]:
    writer: Writer = state.writer
    started = time.monotonic()
    try:
        await writer.write(raw)
    except BrokerUnavailable as exc:
        metrics.KAFKA_WRITE_SECONDS.labels("error").observe(time.monotonic() - started)
        log.warning("broker unavailable", provider=raw.provider, request_id=raw.request_id)
        return Response(
            {"detail": f"broker unavailable, retry later ({exc})"},
            status_code=503,
            headers={"Retry-After": str(state.retry_after_s)},
        )
    metrics.KAFKA_WRITE_SECONDS.labels("ok").observe(time.monotonic() - started)
    return Response({"id": raw.id, "status": "accepted"}, status_code=HTTP_202_ACCEPTED)


@post("/webhooks/{provider:str}", status_code=HTTP_202_ACCEPTED)
async def receive_webhook(
    provider: FromPath[str], request: Request[Any, Any, Any], state: State
) -> Response[dict[str, str]]:
    """Verify, bound, write the raw request to Kafka; 202 only after the broker's ack."""
    verifier: Verifier | None = state.verifiers.get(provider)
    if verifier is None:
        raise NotFoundException(detail=f"unknown provider {provider[:40]!r}")
    headers = _headers(request)
    try:
        check_content_type(provider, headers.get("content-type"))
    except WrongMediaType as exc:
        log.info("webhook rejected", provider=provider, reason=str(exc), status=415)
        raise HTTPException(status_code=415, detail=str(exc)) from None
    body = await request.body()
    if not body:
        raise HTTPException(status_code=400, detail="empty body")
    metrics.BODY_BYTES.labels(provider).observe(len(body))
    try:
        verifier.verify(body, headers)
    except SignatureError as exc:
        metrics.VERIFY_FAILURES.labels(provider, exc.reason[:80]).inc()
        status = 400 if exc.reason == NOT_JSON else 401
        log.info("webhook rejected", provider=provider, reason=exc.reason, status=status)
        raise HTTPException(
            status_code=status, detail=f"signature rejected: {exc.reason}"
        ) from None
    kept = {h: headers[h] for h in (*verifier.kept_headers, "content-type") if h in headers}
    raw = RawWebhook(uuid.uuid4().hex, provider, _now_ms(), body, kept, request_id=_rid(request))
    try:
        check_readable(provider, body)
    except Unreadable as exc:
        # authentic but unreadable: a clear 400 for the sender, and the request kept as a
        # dead letter so that nothing authentic is lost
        log.info("webhook unreadable", provider=provider, reason=str(exc), status=400)
        await _dead_letter(state, raw, str(exc))
        raise HTTPException(status_code=400, detail=f"unreadable body: {exc}") from None
    return await _write(state, raw)


async def _dead_letter(state: State, raw: RawWebhook, reason: str) -> None:
    writer: Writer = state.writer
    try:
        await writer.write_dead_letter(raw, reason)
    except BrokerUnavailable:
        raise HTTPException(
            status_code=503,
            detail="broker unavailable, retry later",
            headers={"Retry-After": str(state.retry_after_s)},
        ) from None


def _rid(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


@post("/checkouts", status_code=HTTP_202_ACCEPTED)
async def register_checkout(
    data: JSONBody[CheckoutIn], request: Request[Any, Any, Any], state: State
) -> Response[dict[str, str]]:
    if data.provider not in PROVIDERS:
        raise HTTPException(status_code=400, detail=f"unknown provider {data.provider[:40]!r}")
    if Decimal(data.amount) <= 0:
        raise HTTPException(status_code=400, detail="amount must be positive")
    body = msgspec.json.encode(data)
    request_id = request.scope.get("state", {}).get("request_id", "")
    raw = RawWebhook(
        uuid.uuid4().hex, data.provider, _now_ms(), body, {}, KIND_CHECKOUT, request_id
    )
    return await _write(state, raw)


@get("/transactions/{provider:str}/{external_id:str}")
async def get_transaction(
    provider: FromPath[str], external_id: FromPath[str], state: State
) -> dict[str, Any]:
    if provider not in PROVIDERS:
        raise NotFoundException(detail=f"unknown provider {provider[:40]!r}")
    pool = await _pool(state)
    tx = await fetch_transaction(pool, provider, external_id)
    if tx is None:
        raise NotFoundException(detail="no such transaction")
    return tx


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "alive"}


@get("/ready")
async def ready(state: State) -> Response[dict[str, str]]:
    writer: Writer = state.writer
    if await writer.ready():
        return Response({"status": "ready"})
    return Response({"detail": "Kafka unreachable"}, status_code=503)


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


def create_app(settings: Settings, writer: Writer | None = None) -> Litestar:
    cfg = settings.ingest
    the_writer: Writer = writer or RawWriter(
        settings.kafka.bootstrap,
        settings.topics.raw,
        settings.topics.dlq,
        cfg.produce_timeout_s,
        cfg.kafka_linger_ms,
    )
    dashboard = Dashboard(settings, _pool)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await the_writer.close()
            if app.state.get("pool") is not None:
                await app.state.pool.close()
            await dashboard.close()

    cors = CORSConfig(allow_origins=list(cfg.cors_origins)) if cfg.cors_origins else None
    return Litestar(
        route_handlers=[
            receive_webhook,
            register_checkout,
            get_transaction,
            health,
            ready,
            metrics.metrics,
            *dashboard.routes(),
        ],
        state=State(
            {
                "writer": the_writer,
                "verifiers": build_verifiers(settings.providers),
                "retry_after_s": cfg.retry_after_s,
                "pg_dsn": settings.postgres.dsn.get_secret_value(),
                "pool": None,
            }
        ),
        lifespan=[lifespan],
        cors_config=cors,
        middleware=[RequestIdMiddleware, metrics.MetricsMiddleware],
        request_max_body_size=cfg.max_body_bytes,
        openapi_config=None,
        debug=False,
    )
