"""``POST /webhooks/{provider}`` in one place: check, verify, write, and the answer as bytes.

Both ways in call this: the raw ASGI route (``ingest.fastpath``, what serves webhooks) and the
Litestar handler that documents the route in OpenAPI and serves the rare request the raw route
leaves to Litestar (a browser's, with an Origin, when CORS is configured). Error bodies are the
bytes Litestar writes for an ``HTTPException`` (``status_code``, ``detail``, ``extra``), so a
client cannot tell which of the two answered.

Order of the checks (each answer's ``detail`` is pinned by tests/unit/ingest and tests/chaos):
content type (415), the body (413/408 while reading, 400 empty), overload (503), signature
(401, or 400/413 for a body that cannot be checked), readable (400, kept as a dead letter),
then the write: 202 only after the broker's acks=all acknowledgement, else 503.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from domain.providers import payment_key
from domain.records import KIND_WEBHOOK, RawWebhook
from ingest import metrics
from ingest.errors import BrokerUnavailable
from ingest.ids import new_id
from ingest.intake import Unreadable, WrongMediaType, check_content_type, check_readable
from ingest.verify.base import SignatureError, Verifier
from ingest.writer import Writer

log = structlog.get_logger("ingest")

JSON = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, JSON body, extra headers (the content type is always JSON)."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


def refusal(
    status: int,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> Answer:
    """An error answer, byte for byte as Litestar writes its ``HTTPException``."""
    doc: dict[str, Any] = {"status_code": status, "detail": detail}
    if extra:
        doc["extra"] = extra
    return Answer(status, orjson.dumps(doc), headers)


class WebhookIntake:
    """The webhook route's work, shared by the raw ASGI route and the Litestar handler.

    ``max_inflight`` bounds the webhooks waiting for their broker ack: beyond it a webhook is
    answered 503 with Retry-After at once, before its signature is checked, so that overload
    sheds load in microseconds instead of queueing every client until its timeout."""

    def __init__(
        self,
        verifiers: Mapping[str, Verifier],
        writer: Writer,
        retry_after_s: int,
        max_inflight: int,
    ) -> None:
        self.verifiers = verifiers
        self._writer = writer
        self._retry_after = ((b"retry-after", str(retry_after_s).encode()),)
        self._max_inflight = max_inflight
        self.inflight = 0
        self._ok = metrics.KAFKA_WRITE_SECONDS.labels("ok")
        self._failed = metrics.KAFKA_WRITE_SECONDS.labels("error")
        self._sizes = {p: metrics.BODY_BYTES.labels(p) for p in verifiers}

    def content_type(self, provider: str, headers: Mapping[str, str]) -> Answer | None:
        """415 for a content type this provider never sends; None if it may."""
        try:
            check_content_type(provider, headers.get("content-type"))
        except WrongMediaType as exc:
            log.info("webhook rejected", provider=provider, reason=str(exc), status=415)
            return refusal(415, str(exc))
        return None

    async def accept(
        self, provider: str, headers: Mapping[str, str], body: bytes, request_id: str
    ) -> Answer:
        """Everything after the body has arrived (within its size bound and deadline)."""
        if not body:
            return refusal(400, "empty body")
        self._sizes[provider].observe(len(body))
        if self.inflight >= self._max_inflight:
            metrics.SHED.inc()
            return refusal(503, "overloaded, retry later", headers=self._retry_after)
        verifier = self.verifiers[provider]
        try:
            verifier.verify(body, headers)
        except SignatureError as exc:
            metrics.VERIFY_FAILURES.labels(provider, exc.reason[:80]).inc()
            log.info("webhook rejected", provider=provider, reason=exc.reason, status=exc.status)
            return refusal(exc.status, f"signature rejected: {exc.reason}")
        kept = {h: headers[h] for h in (*verifier.kept_headers, "content-type") if h in headers}
        raw = RawWebhook(
            new_id(),
            provider,
            int(time.time() * 1000),
            body,
            kept,
            request_id=request_id,
            key=_key(provider, body),
        )
        self.inflight += 1
        try:
            return await self._write(raw)
        finally:
            self.inflight -= 1

    async def _write(self, raw: RawWebhook) -> Answer:
        try:
            check_readable(raw.provider, raw.body)
        except Unreadable as exc:
            # authentic but unreadable: a clear 400 for the sender, and the request kept as a
            # dead letter so that nothing authentic is lost
            log.info("webhook unreadable", provider=raw.provider, reason=str(exc), status=400)
            try:
                await self._writer.write_dead_letter(raw, str(exc))
            except BrokerUnavailable:
                return refusal(503, "broker unavailable, retry later", headers=self._retry_after)
            return refusal(
                400,
                f"unreadable body: {exc}; kept as dead letter ingest:{raw.id}",
                extra={"id": raw.id},
            )
        started = time.monotonic()
        try:
            await self._writer.write(raw)
        except BrokerUnavailable as exc:
            self._failed.observe(time.monotonic() - started)
            log.warning("broker unavailable", provider=raw.provider, request_id=raw.request_id)
            detail = orjson.dumps({"detail": f"broker unavailable, retry later ({exc})"})
            return Answer(503, detail, self._retry_after)
        self._ok.observe(time.monotonic() - started)
        return Answer(202, b'{"id":"%s","status":"accepted"}' % raw.id.encode())


def _key(provider: str, body: bytes) -> str:
    """The payment the webhook is about, its partition key; empty if the body does not say."""
    try:
        return payment_key(provider, KIND_WEBHOOK, body)
    except Exception:  # a body the normalizer cannot read either: streams dead-letters it
        return ""
