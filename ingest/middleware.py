"""ASGI middleware of ingest: a request id on every answer, and a deadline for the body.

``X-Request-ID`` is taken from the caller when it is a short safe token, else made here.
The body deadline cuts off slow senders: a client that sends its headers and then trickles
(or withholds) the body gets 408 within ``ingest.body_timeout_s`` and the connection closed,
instead of holding a worker slot open for as long as it likes.
"""

from __future__ import annotations

import asyncio

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from ingest.ids import request_id


def RequestIdMiddleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        # header values are bytes of any kind (latin-1 at most): never assume UTF-8
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = request_id(given)
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = rid
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware


class BodyTimeout(HTTPException):
    status_code = 408


#: read and dropped, at most, of a body refused before its end, so the client sees the answer
DRAIN_LIMIT = 1024 * 1024


def BodyDeadlineMiddleware(app: ASGIApp, timeout_s: float) -> ASGIApp:
    """The whole body must have arrived within ``timeout_s`` of the request's start (a total
    deadline, not an idle timeout: a byte every second does not keep a request alive).

    A 413 is answered before the body has all arrived; the rest of the body (up to
    ``DRAIN_LIMIT``, within the same deadline) is read and dropped first, else the server
    closes a connection with unread data and the client, still sending, may never read the
    413 (seen with granian: "server disconnected without sending a response")."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        complete = False

        async def bounded_receive() -> ReceiveMessage:
            nonlocal complete
            if complete:  # the body is in: later calls wait for a disconnect, unbounded
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):  # no task per call, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(
                    detail=f"request body not received within {timeout_s:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def drain() -> None:
            dropped = 0
            try:
                while not complete and dropped < DRAIN_LIMIT:
                    body = (await bounded_receive()).get("body", b"")
                    dropped += len(body) if isinstance(body, bytes) else 0
            except BodyTimeout:
                pass

        async def send_after_drain(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 413:
                await drain()
            await send(message)

        await app(scope, bounded_receive, send_after_drain)

    return middleware
