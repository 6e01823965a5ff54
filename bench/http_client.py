"""A lean HTTP/1.1 client for the load generator: requests serialized to bytes before the
clock starts, sent on keep-alive connections by an ``asyncio.Protocol``, answers read only as
far as their status and length. No task, no request or response object per request: the load
generator shares the machine with what it measures, so every microsecond it spends is one the
stack does not get (aiohttp cost about 390 µs of CPU per request here, issue 16).

Only what ingest speaks: ``Content-Length`` bodies (no chunked answers), HTTP/1.1 keep-alive,
``Connection: close`` honoured.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

#: an idle connection is not reused after this many seconds but closed: the server drops idle
#: keep-alive connections after its own timeout (uvicorn: 5 s), and a request written while it
#: does so is lost to a reset (3 of 56,429 at 1,000/s before this bound)
IDLE_MAX_S = 2.0

#: called once per attempt: (job, status or 0, error name or "")
Done = Callable[["Job", int, str], None]


@dataclass(slots=True)
class Job:
    index: int
    data: bytes
    t0: float = 0.0
    attempt: int = 0


def request_bytes(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One request, ready for the wire (header values as latin-1, as HTTP carries them)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    skip = ("host", "content-length")
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in skip]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection(asyncio.Protocol):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self.job: Job | None = None
        self.closed = False
        self.timed_out = False
        self._buf = bytearray()
        self._need = -1
        self._status = 0
        self._close_after = False
        self._timer: asyncio.TimerHandle | None = None
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, job: Job, timeout: float) -> None:
        assert self.transport is not None
        self.job = job
        self._timer = self._pool.loop.call_later(timeout, self._timeout)
        self.transport.write(job.data)

    def _timeout(self) -> None:
        self.timed_out = True
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._need < 0:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end]).lower()
            self._status = int(head[9:12])
            self._close_after = b"\r\nconnection: close" in head
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._need = 0
            else:
                stop = head.find(b"\r\n", at + 2)
                self._need = int(head[at + 17 : stop if stop > 0 else len(head)])
            del self._buf[: end + 4]
        if len(self._buf) < self._need:
            return
        del self._buf[: self._need]
        self._need = -1
        if self._close_after and self.transport is not None:
            self.closed = True
            self.transport.close()
        self._finish(self._status, "")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.job is not None:
            if self.timed_out:
                self._finish(0, "TimeoutError")
            else:
                self._finish(0, type(exc).__name__ if exc else "ServerDisconnectedError")
        else:
            self._pool.lost(self)

    def _finish(self, status: int, error: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        job, self.job = self.job, None
        if job is not None:
            self._pool.finished(self, job, status, error)


class Pool:
    """Up to ``limit`` keep-alive connections; jobs wait in order for a free one."""

    def __init__(self, url: str, limit: int, timeout: float, done: Done) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.loop = asyncio.get_running_loop()
        self._limit, self._timeout, self._done = limit, timeout, done
        self._idle: list[_Connection] = []
        self._waiting: deque[Job] = deque()
        self._open = 0
        self.on_start: Callable[[Job], None] | None = None

    def submit(self, job: Job) -> None:
        while self._idle and self.loop.time() - self._idle[-1].idle_since > IDLE_MAX_S:
            self._retire(self._idle.pop())
        if self._idle:
            self._start(self._idle.pop(), job)
        elif self._open < self._limit:
            self._open += 1
            self.loop.create_task(self._connect(job))
        else:
            self._waiting.append(job)

    def _start(self, conn: _Connection, job: Job) -> None:
        if self.on_start is not None:
            self.on_start(job)
        conn.send(job, self._timeout)

    async def _connect(self, job: Job) -> None:
        try:
            _, conn = await self.loop.create_connection(
                lambda: _Connection(self), self.host, self.port
            )
        except OSError as exc:
            self._open -= 1
            self._done(job, 0, type(exc).__name__)
            self._next_on_new()
            return
        self._start(conn, job)

    def _next_on_new(self) -> None:
        if self._waiting and self._open < self._limit:
            self._open += 1
            self.loop.create_task(self._connect(self._waiting.popleft()))

    def finished(self, conn: _Connection, job: Job, status: int, error: str) -> None:
        self._done(job, status, error)
        if conn.closed:
            self._open -= 1
            self._next_on_new()
        elif self._waiting:
            self._start(conn, self._waiting.popleft())
        else:
            conn.idle_since = self.loop.time()
            self._idle.append(conn)

    def _retire(self, conn: _Connection) -> None:
        """Close an idle connection before the server may: it is no longer counted as open."""
        self._open -= 1
        conn.closed = True
        if conn.transport is not None:
            conn.transport.close()

    def lost(self, conn: _Connection) -> None:
        """An idle connection the server closed."""
        if conn in self._idle:
            self._idle.remove(conn)
            self._open -= 1
            self._next_on_new()

    def close(self) -> None:
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
