"""The dispatcher: sends due outbox rows, never more than an endpoint's cap at once.

Each endpoint is claimed on its own, up to its free slots, so a slow or dead endpoint uses
up only its own slots and its rows wait in the outbox with their next try (a durable
schedule: nothing sleeps holding a consumer). Per (endpoint, payment) only the oldest pending
version is ever claimed, so a receiver never sees an older version after a newer one. New
transitions and finished requests wake the loop at once; due retries are found by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence

import asyncpg

from notify import metrics, outbox
from notify.attempts import AttemptLog
from notify.deadletters import DeadLetters
from notify.http import Answer, Client
from notify.message import Endpoint
from notify.outbox import Claimed, Outcome
from notify.schedule import Schedule, Verdict, verdict
from notify.sign import Signer
from sinks.errors import POSTGRES_DOWN

log = logging.getLogger("notify")

#: Postgres away, or any error of its: dispatch pauses and tries again
_PG_DOWN = (*POSTGRES_DOWN, asyncpg.PostgresError)

#: a lease outlives the request's timeout by this much; then the row is due again
LEASE_SLACK_S = 30.0
#: after a wake-up, wait this long for more before claiming: fewer, larger claims
COALESCE_S = 0.003


def decide(
    c: Claimed, a: Answer, schedule: Schedule, rand: Callable[[], float] = random.random
) -> Outcome:
    """The outbox's next state for one attempt's answer: pure."""
    v = verdict(a.code)
    if v is Verdict.DELIVERED:
        return Outcome(c.webhook_id, a.code, "delivered", 0.0, None)
    if v is Verdict.PERMANENT:
        return Outcome(c.webhook_id, a.code, "dead", 0.0, f"HTTP {a.code}: permanent failure")
    wait = schedule.next_try(c.age_s, c.attempts + 1, rand)
    if wait is None:
        why = f"gave up after {c.attempts + 1} attempts over {c.age_s:.0f} s; last: {a.error}"
        return Outcome(c.webhook_id, a.code, "dead", 0.0, why)
    return Outcome(c.webhook_id, a.code, "pending", wait, a.error)


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        leases: asyncpg.Pool,
        endpoints: Sequence[Endpoint],
        schedule: Schedule,
        client: Client,
        attempts: AttemptLog,
        dead: DeadLetters,
        wake: asyncio.Event,
        poll_s: float,
    ) -> None:
        self._pool, self._leases = pool, leases
        self._endpoints, self._schedule = list(endpoints), schedule
        self._client, self._attempts, self._dead = client, attempts, dead
        self._wake, self._poll_s = wake, poll_s
        self._signers = {e.url: Signer(e.secrets) for e in endpoints}
        self._busy = {e.url: 0 for e in endpoints}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pg_down = False
        #: answered, not yet written back, with their endpoint: each still holds its slot
        self._outcomes: list[tuple[str, Outcome]] = []
        self._queued = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        flusher = asyncio.create_task(self._flush_loop(stop))
        try:
            while not stop.is_set():
                self._wake.clear()
                for e in self._endpoints:
                    await self._fill(e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)
                    await asyncio.sleep(COALESCE_S)  # one claim for what the wake-ups free
        finally:
            if self._tasks:  # let requests under way finish and record their outcome
                await asyncio.wait(self._tasks, timeout=max(e.timeout_s for e in self._endpoints))
            await flusher
            await self._flush()

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        """Write answered attempts back in batches: one UPDATE (one fsync) for many."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queued.wait(), 0.5)
            self._queued.clear()
            await self._flush()

    async def _flush(self) -> None:
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        try:
            await outbox.finish(self._pool, [out for _, out in batch])
        except _PG_DOWN as exc:
            self._note_pg(exc)
            self._outcomes[:0] = batch  # again soon; past its lease a row may be re-sent
            await asyncio.sleep(0.5)
            return
        for url, _ in batch:
            self._release(url)  # a payment's next version may be due now, and the slot free

    async def _fill(self, e: Endpoint) -> None:
        free = e.max_in_flight - self._busy[e.url]
        if free <= 0:
            return
        try:
            claimed = await outbox.claim(self._leases, e.url, free, e.timeout_s + LEASE_SLACK_S)
        except _PG_DOWN as exc:
            self._note_pg(exc)
            return
        self._note_pg(None)
        for c in claimed:
            self._busy[e.url] += 1
            metrics.series(e.url).in_flight.inc()
            task = asyncio.create_task(self._send(e, c))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, e: Endpoint, c: Claimed) -> None:
        try:
            headers = self._signers[e.url].headers(c.webhook_id, int(time.time()), c.body)
            answer = await self._client.post(e.url, headers, c.body, e.timeout_s)
            out = decide(c, answer, self._schedule)
            self._account(e, c, answer, out)
            if out.state == "dead":
                await self._dead.send(c, out.error or "", c.attempts + 1)
            self._outcomes.append((e.url, out))
            self._queued.set()
        except Exception:  # the lease expires and the row is tried again
            name = metrics.series(e.url).name
            log.exception("notify: delivery %s to %s not recorded", c.webhook_id, name)
            self._release(e.url)
        except BaseException:  # cancelled: the lease expires and the row is tried again
            self._release(e.url)
            raise

    def _release(self, url: str) -> None:
        """A slot of the endpoint is free again: its request's outcome is written back (or
        will never be). Holding it until then bounds what a crash may re-send to the
        endpoint's ``max_in_flight``: every request answered but not yet recorded, and every
        request under way, holds a slot."""
        self._busy[url] -= 1
        metrics.series(url).in_flight.dec()
        self._wake.set()

    def _account(self, e: Endpoint, c: Claimed, a: Answer, out: Outcome) -> None:
        series = metrics.series(e.url)
        name = series.name
        result = {"delivered": "delivered", "pending": "retry"}.get(out.state, "permanent")
        if out.state == "dead" and verdict(a.code) is Verdict.RETRY:
            result = "retry"
        series.attempts(result).inc()
        series.latency.observe(a.seconds)
        if out.state == "delivered":
            series.lag.observe(c.since_s + a.seconds)
        elif out.state == "dead":
            series.dead.inc()
            log.warning("notify: gave up %s to %s: %s", c.webhook_id, name, out.error)
        self._attempts.add(
            name, c.webhook_id, c.provider, c.external_id, c.version, c.status,
            c.attempts + 1, a.code, a.seconds, out.state, a.error,
        )  # fmt: skip

    def _note_pg(self, exc: BaseException | None) -> None:
        if exc is not None and not self._pg_down:
            log.warning("notify: Postgres unreachable, dispatch paused: %s", exc)
        elif exc is None and self._pg_down:
            log.warning("notify: Postgres back, dispatch resumed")
        self._pg_down = exc is not None


async def watch_backlog(
    pool: asyncpg.Pool, endpoints: Sequence[Endpoint], stop: asyncio.Event
) -> None:
    """Keep the backlog gauges true (every 5 s)."""
    while not stop.is_set():
        try:
            now = await outbox.backlog(pool)
        except _PG_DOWN:
            now = None
        for e in endpoints if now is not None else ():
            pending, retrying, _ = now.get(e.url, (0, 0, 0.0)) if now else (0, 0, 0.0)
            series = metrics.series(e.url)
            series.backlog.set(pending)
            series.retrying.set(retrying)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5.0)
