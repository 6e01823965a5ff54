"""The ingest service's own OpenAPI document, served at ``/schema/openapi.json``.

It says what the service really does: a webhook body is raw bytes (verified byte for byte,
never parsed by the framework), and every documented error answer is JSON with a ``detail``.
Schemathesis fuzzes the live service from this document (tests/chaos/test_schema_fuzz.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, Operation, RequestBody, Schema, SecurityScheme
from litestar.openapi.spec import OpenAPIMediaType as MediaType
from litestar.openapi.spec import Parameter as HeaderParameter
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from domain.model import PROVIDERS

TITLE = "checkout-pipeline ingest"
PATH = "/schema"

#: the path parameter ``provider`` is one of these; any other name is answered 404
PROVIDER_ENUM: dict[str, Any] = {"enum": sorted(PROVIDERS)}

#: the signature headers of the HMAC providers (JWT's ``Authorization`` cannot be a parameter
#: in OpenAPI); all optional here, since which one is needed depends on the provider
SIGNATURE_HEADERS = (
    "X-CC-Webhook-Signature",
    "BTCPay-Sig",
    "x-nowpayments-sig",
    "HMAC",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)

#: the merchant API's security requirement (``[api] tokens``); webhook routes have none
BEARER: list[dict[str, list[str]]] = [{"apiToken": []}]

#: the 401 and 415 of the merchant API, which say something else than a webhook's
API_DESCRIPTIONS = {
    401: "Missing or wrong API token (Authorization: Bearer, one of [api] tokens)",
    415: "Content type other than application/json",
}

DESCRIPTIONS = {
    400: "Unreadable body or invalid parameters",
    401: "Bad or missing signature, or a timestamp outside the 5-minute window",
    404: "Unknown provider, route or transaction",
    408: "The request body did not arrive in time (ingest.body_timeout_s)",
    413: "Body larger than ingest.max_body_bytes",
    415: "Content type this provider never sends",
    503: "Kafka or Postgres unavailable; retry after Retry-After seconds",
}


class ErrorBody(msgspec.Struct):
    """Every error answer: ``detail`` is readable; Litestar's own errors add ``status_code``."""

    detail: str
    status_code: int | None = None


class Accepted(msgspec.Struct):
    """The raw webhook (or checkout registration) is on Kafka under ``id``."""

    id: str
    status: str


class EventOut(msgspec.Struct):
    event_id: str
    status: str
    effective_status: str
    applied: bool
    note: str
    provider_status: str
    amount: str | None
    currency: str | None
    occurred_at: datetime
    received_at: datetime | None


class TransactionOut(msgspec.Struct):
    """A payment's current state (Postgres ``transactions``) and the events applied to it."""

    provider: str
    external_id: str
    status: str
    amount: str | None
    currency: str | None
    order_id: str | None
    version: int
    late: bool
    updated_at: datetime
    expected_amount: str | None
    events: list[EventOut]


def errors(*codes: int, auth: bool = False) -> dict[int, ResponseSpec]:
    texts = {**DESCRIPTIONS, **API_DESCRIPTIONS} if auth else DESCRIPTIONS
    return {
        code: ResponseSpec(ErrorBody, description=texts[code], generate_examples=False)
        for code in codes
    }


def accepted() -> dict[int, ResponseSpec]:
    return {
        202: ResponseSpec(
            Accepted, description="Written to Kafka (acks=all)", generate_examples=False
        )
    }


def transaction() -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(
            TransactionOut, description="The payment's current state", generate_examples=False
        )
    }


_RAW = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)


@dataclass
class RawBodyOperation(Operation):
    """``POST /webhooks/{provider}``: the body is raw bytes (JSON, or a form for CoinPayments),
    read by the handler itself so that the signature is checked over exactly what arrived."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                "application/json": MediaType(schema=_RAW),
                "application/x-www-form-urlencoded": MediaType(schema=_RAW),
            },
            required=True,
            description="The provider's webhook, byte for byte as signed",
        )
        headers = [
            HeaderParameter(
                name=name, param_in="header", required=False, schema=Schema(type=OpenAPIType.STRING)
            )
            for name in SIGNATURE_HEADERS
        ]
        self.parameters = [*(self.parameters or []), *headers]


def config() -> OpenAPIConfig:
    try:
        release = version("checkout-pipeline")
    except PackageNotFoundError:
        release = "0.0.0"
    return OpenAPIConfig(
        title=TITLE,
        version=release,
        path=PATH,
        render_plugins=[JsonRenderPlugin()],
        description=(
            "Payment webhooks in, raw to Kafka. Every error answer is JSON with `detail`. "
            "The merchant API (checkouts, transactions) needs `Authorization: Bearer <token>`; "
            "webhooks are authenticated by their provider's signature instead."
        ),
        components=Components(
            security_schemes={
                "apiToken": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="One of the [api] tokens of the ingest configuration",
                )
            }
        ),
    )
