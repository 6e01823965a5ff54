"""The ingest HTTP app, built by ``create_app(settings)``; nothing connects at import time.

Only what receiving needs: the webhook route, the merchant API's contract routes
(``POST /checkouts``, ``GET /transactions/...``), health and readiness. The monitoring
dashboard is an app of its own (``dashboard/``, docs/decisions/0070): no ClickHouse client and
no Kafka admin client here.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.middleware import DefineMiddleware
from litestar.params import JSONBody, KwargDefinition
from litestar.status_codes import HTTP_202_ACCEPTED

from domain.model import PROVIDERS, transaction_key
from domain.records import KIND_CHECKOUT, RawWebhook
from ingest import metrics
from ingest import openapi as doc
from ingest.auth import Tokens, api_guard, json_only
from ingest.cors import cors_config, json_preflight_refusal
from ingest.errors import BrokerUnavailable
from ingest.fastpath import IngestApp, WebhookRoute
from ingest.ids import new_id
from ingest.middleware import BodyDeadlineMiddleware, RequestIdMiddleware
from ingest.transactions import Provider, find_transaction, get_transaction
from ingest.verify.base import Clock, system_clock
from ingest.verify.registry import build_verifiers
from ingest.webhooks import WebhookIntake
from ingest.writer import RawWriter, Writer
from pipeline.settings import Settings

log = structlog.get_logger("ingest")

# Patterns mean the same to msgspec (Python) and to OpenAPI (ECMA): ASCII classes only, and
# the handler checks them again with fullmatch, since Python's ``$`` also matches before a
# final newline. Ids are printable: Postgres cannot even store NUL.
_ID = r"[^\x00-\x1f\x7f]{1,200}"
_AMOUNT = r"[0-9]{1,18}(\.[0-9]{1,18})?"
_CURRENCY = r"[A-Za-z0-9]{2,16}"


class CheckoutIn(msgspec.Struct, forbid_unknown_fields=True):
    provider: Annotated[str, KwargDefinition(schema_extra=doc.PROVIDER_ENUM)]
    external_id: Annotated[str, msgspec.Meta(pattern=f"^{_ID}$")]
    order_id: Annotated[str, msgspec.Meta(pattern=f"^{_ID}$")]
    amount: Annotated[str, msgspec.Meta(pattern=f"^{_AMOUNT}$")]
    currency: Annotated[str, msgspec.Meta(pattern=f"^{_CURRENCY}$")]

    def invalid_field(self) -> str | None:
        fields = (
            ("external_id", _ID),
            ("order_id", _ID),
            ("amount", _AMOUNT),
            ("currency", _CURRENCY),
        )
        return next((f for f, p in fields if not re.fullmatch(p, getattr(self, f))), None)


def _headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    """From the scope, not through Litestar's Headers; values are latin-1 at most."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}


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


@post(
    "/webhooks/{provider:str}",
    status_code=HTTP_202_ACCEPTED,
    operation_class=doc.RawBodyOperation,
    responses={**doc.accepted(), **doc.errors(400, 401, 404, 408, 413, 415, 503)},
)
async def receive_webhook(
    provider: Provider, request: Request[Any, Any, Any], state: State
) -> Response[bytes]:
    """Verify, bound, write the raw request to Kafka; 202 only after the broker's ack.

    Documents the route; ``ingest.fastpath`` serves it, and leaves only the requests it does
    not take (unknown provider, a browser's request under CORS) to this handler."""
    intake: WebhookIntake = state.intake
    if provider not in intake.verifiers:
        raise NotFoundException(detail=f"unknown provider {provider[:40]!r}")
    headers = _headers(request)
    answer = intake.content_type(provider, headers)
    if answer is None:
        answer = await intake.accept(provider, headers, await request.body(), _rid(request))
    return Response(
        answer.body,
        status_code=answer.status,
        media_type=MediaType.JSON,
        headers={k.decode(): v.decode() for k, v in answer.headers},
    )


def _undecodable(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """Litestar decodes the JSON of ``/checkouts`` before the handler runs, and lets two
    errors of its decoder through: nesting deeper than it can follow, and strings that are not
    UTF-8. Both mean an unreadable body: 400, not a crash."""
    why = "nested too deeply" if isinstance(exc, RecursionError) else "not UTF-8"
    return Response({"detail": f"unreadable body: {why}"}, status_code=400)


def _rid(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


@post(
    "/checkouts",
    status_code=HTTP_202_ACCEPTED,
    guards=[api_guard, json_only],
    security=doc.BEARER,
    responses={**doc.accepted(), **doc.errors(400, 401, 408, 413, 415, 503, auth=True)},
)
async def register_checkout(
    data: JSONBody[CheckoutIn], request: Request[Any, Any, Any], state: State
) -> Response[dict[str, str]]:
    if data.provider not in PROVIDERS:
        raise HTTPException(status_code=400, detail=f"unknown provider {data.provider[:40]!r}")
    if (field := data.invalid_field()) is not None:
        raise HTTPException(status_code=400, detail=f"invalid {field}")
    if Decimal(data.amount) <= 0:
        raise HTTPException(status_code=400, detail="amount must be positive")
    body = msgspec.json.encode(data)
    key = transaction_key(data.provider, data.external_id)
    raw = RawWebhook(
        new_id(), data.provider, _now_ms(), body, {}, KIND_CHECKOUT, _rid(request), key
    )
    return await _write(state, raw)


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "alive"}


@get("/ready", responses=doc.errors(503))
async def ready(state: State) -> Response[dict[str, str]]:
    writer: Writer = state.writer
    if await writer.ready():
        return Response({"status": "ready"})
    return Response({"detail": "Kafka unreachable"}, status_code=503)


@asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    cfg = app.state.settings.ingest
    stop_metrics = metrics.serve(cfg.metrics_host, cfg.metrics_port)
    try:
        yield
    finally:
        stop_metrics()
        await app.state.writer.close()
        if app.state.get("pool") is not None:
            await app.state.pool.close()


def _writer(settings: Settings) -> Writer:
    cfg = settings.ingest
    t = settings.topics
    return RawWriter(
        settings.kafka.bootstrap, t.raw, t.dlq, cfg.produce_timeout_s, cfg.kafka_linger_ms
    )


def create_app(
    settings: Settings, writer: Writer | None = None, clock: Clock = system_clock
) -> Litestar:
    """The app; ``clock`` (unix seconds) is what the timed signature schemes check against."""
    cfg = settings.ingest
    the_writer = writer or _writer(settings)
    api_tokens = Tokens(t.get_secret_value() for t in settings.api.tokens)
    if not api_tokens:
        log.warning("no [api] tokens configured: the merchant API answers 401 to every call")
    verifiers = build_verifiers(settings.providers, clock)
    intake = WebhookIntake(verifiers, the_writer, cfg.retry_after_s, cfg.max_inflight)
    app = IngestApp(
        route_handlers=[
            receive_webhook,
            register_checkout,
            get_transaction,
            find_transaction,
            health,
            ready,
        ],
        state=State(
            {
                "settings": settings,
                "writer": the_writer,
                "intake": intake,
                "retry_after_s": cfg.retry_after_s,
                "api_tokens": api_tokens,
                "pg_dsn": settings.postgres.dsn.get_secret_value(),
                "pool": None,
            }
        ),
        lifespan=[_lifespan],
        cors_config=cors_config(cfg.cors_origins),
        before_send=[json_preflight_refusal],
        exception_handlers={RecursionError: _undecodable, UnicodeDecodeError: _undecodable},
        middleware=[
            RequestIdMiddleware,
            metrics.MetricsMiddleware,
            DefineMiddleware(BodyDeadlineMiddleware, timeout_s=cfg.body_timeout_s),
        ],
        request_max_body_size=cfg.max_body_bytes,
        openapi_config=doc.config(),
        debug=False,
    )
    app.webhook_route = WebhookRoute(
        intake, cfg.max_body_bytes, cfg.body_timeout_s, cors=bool(cfg.cors_origins)
    )
    return app
