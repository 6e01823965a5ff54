"""uvicorn's httptools protocol with a deadline for a request's headers (slowloris).

uvicorn bounds neither the time to a first request nor the time a request's headers take: its
keep-alive timer restarts on any byte. Here every connection must have sent a request's
complete headers within ``header_timeout_s`` of opening, or of its previous answer; otherwise
it is closed without an answer (as hyper did under granian, decisions 0011 and 0016). The
deadline is for the whole header, not between bytes: a trickle does not extend it. The body
has its own deadline in the app (``ingest.fastpath``, ``BodyDeadlineMiddleware``).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """Set ``header_timeout_s`` on a subclass (``with_header_timeout``)."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the next request's headers are due within the deadline of this answer, unless a
        # pipelined request (its headers complete already) was started instead
        cycle = self.cycle
        if not self.transport.is_closing() and cycle is not None and cycle.response_complete:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderDeadlineProtocol]:
    return type("IngestHttpProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": seconds})
