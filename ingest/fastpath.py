"""The raw ASGI route of ``POST /webhooks/{provider}``, in front of Litestar (decision 0016).

A webhook needs none of the framework's per-request work: no signature model, no ``Request``,
no dependency injection, no ``Response`` object, no three middleware closures. This route
reads the headers from the scope and the body from ``receive`` itself, keeping what the
middleware and Litestar did for it: the request id (``X-Request-ID`` echoed when safe, bound
for the logs), the body's size bound (413, announced or streamed, the rest drained first) and
total deadline (408 with ``Connection: close``), the request counter, and JSON errors byte for
byte as Litestar writes them. ``ingest.webhooks`` does the rest.

Litestar still answers everything else: other paths and methods, an unknown provider (404),
and a request with an ``Origin`` header when CORS is configured (its CORS middleware adds the
headers). The Litestar handler of the route stays registered, so the OpenAPI document is the
same and that fallback runs the same ``WebhookIntake``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any

import structlog
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import (
    HTTPReceiveMessage,
    HTTPScope,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Receive,
    Scope,
    Send,
)

from ingest import metrics
from ingest.ids import request_id
from ingest.middleware import DRAIN_LIMIT
from ingest.webhooks import JSON, Answer, WebhookIntake, refusal
from pipeline import eager

log = structlog.get_logger("ingest")

PREFIX = "/webhooks/"
_CLOSE = ((b"connection", b"close"),)


class _Disconnected(Exception):
    """The client went away before its body had arrived: nobody to answer."""


class WebhookRoute:
    """``POST /webhooks/<known provider>`` as a raw ASGI callable."""

    def __init__(
        self, intake: WebhookIntake, max_body_bytes: int, body_timeout_s: float, cors: bool
    ) -> None:
        self.intake = intake
        self._max = max_body_bytes
        self._timeout = body_timeout_s
        self._too_slow = f"request body not received within {body_timeout_s:g} s"
        self._cors = cors
        self._counters: dict[tuple[str, int], Any] = {}

    def serves(self, scope: HTTPScope) -> str | None:
        """The provider when this request is the route's, None when Litestar answers it."""
        if scope["method"] != "POST":
            return None
        path: str = scope["path"]
        if not path.startswith(PREFIX):
            return None
        provider = path[len(PREFIX) :]
        if provider not in self.intake.verifiers:
            return None  # unknown provider, or a longer path: Litestar's 404
        if self._cors and any(k == b"origin" for k, _ in scope["headers"]):
            return None  # a browser's request: Litestar's CORS middleware answers it
        return provider

    async def __call__(self, scope: HTTPScope, receive: Receive, send: Send, provider: str) -> None:
        # header values are bytes of any kind (latin-1 at most): never assume UTF-8
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = request_id(headers.get("x-request-id", ""))
        try:
            answer = self.intake.content_type(provider, headers)
            if answer is None:
                body = await self._body(receive, headers.get("content-length"))
                if isinstance(body, Answer):
                    answer = body
                else:
                    answer = await self.intake.accept(provider, headers, body, rid)
        except _Disconnected:
            return
        except Exception:
            log.exception("webhook failed", provider=provider)
            answer = refusal(500, "Internal Server Error")
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    JSON,
                    (b"content-length", b"%d" % len(answer.body)),
                    *answer.headers,
                    (b"x-request-id", rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body, "more_body": False})
        self._count(provider, answer.status)

    def _count(self, provider: str, status: int) -> None:
        counter = self._counters.get((provider, status))
        if counter is None:
            counter = metrics.REQUESTS.labels("webhook", provider, str(status))
            self._counters[provider, status] = counter
        counter.inc()

    async def _body(self, receive: Receive, length: str | None) -> bytes | Answer:
        """The whole body within its size bound and the total deadline, or the refusal."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        if length is not None:
            try:
                announced = int(length)
            except ValueError:
                return refusal(400, f"Invalid content-length: {length!r}")
            if announced > self._max:
                return await self._too_large(receive, deadline, 0)
        chunks: list[bytes] = []
        size = 0
        more = True
        try:
            while more and size <= self._max:
                message: HTTPReceiveMessage = await _by(deadline, receive())
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                more = message.get("more_body", False)
                chunk = message.get("body", b"")
                size += len(chunk)
                chunks.append(chunk)
        except TimeoutError:
            return refusal(408, self._too_slow, headers=_CLOSE)
        if size > self._max:
            return await self._too_large(receive, deadline, size, more)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _too_large(
        self, receive: Receive, deadline: float, dropped: int, more: bool = True
    ) -> Answer:
        """413, after reading and dropping the rest of the body (up to ``DRAIN_LIMIT``, within
        the deadline): a server that closes a connection with unread data may leave a client
        that is still sending without the answer."""
        try:
            async with asyncio.timeout_at(deadline):
                while more and dropped < DRAIN_LIMIT:
                    message: HTTPReceiveMessage = await receive()  # type: ignore[assignment]
                    if message["type"] == "http.disconnect":
                        raise _Disconnected
                    dropped += len(message.get("body", b""))
                    more = message.get("more_body", False)
        except TimeoutError:
            pass
        return refusal(413, "Request Entity Too Large")


async def _by(deadline: float, received: Awaitable[Any]) -> Any:
    """What ``receive()`` gives, by ``deadline`` (else TimeoutError). A body that came with
    the headers is there at once (uvicorn's ``receive`` then completes without suspending):
    only a wait sets a timer (decision 0140)."""
    if isinstance(received, Coroutine):
        done, result = eager.step(received)
        if done:
            return result
        received = result
    async with asyncio.timeout_at(deadline):
        return await received


class IngestApp(Litestar):
    """Litestar with the raw webhook route in front: ``webhook_route`` serves its requests
    before Litestar's own entry point does any work; every other request goes to Litestar."""

    webhook_route: WebhookRoute | None = None

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        route = self.webhook_route
        if route is not None and scope["type"] == ScopeType.HTTP:
            provider = route.serves(scope)  # type: ignore[arg-type]
            if provider is not None:
                await route(scope, receive, send, provider)  # type: ignore[arg-type]
                return
        await super().__call__(scope, receive, send)
