"""The one retry policy of every process: exponential backoff with full jitter, by tenacity.

``Backoff`` holds the numbers (from the settings); ``Backoff.retrying`` makes tenacity's
``AsyncRetrying`` of them, for ``async for attempt in ...: with attempt: ...`` loops that need
hooks (a sink pauses its consumer on the first failure). ``retry`` is for a call on a hot path
(docs/decisions/0080-libraries.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    after_nothing,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    stop_never,
    wait_random_exponential,
)
from tenacity.stop import stop_base

T = TypeVar("T")
Hook = Callable[[RetryCallState], Awaitable[None] | None]


class _Until(stop_base):
    """Stop once an asyncio event is set (tenacity's ``stop_when_event_set`` is typed for
    ``threading.Event``)."""

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.event.is_set()


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry ``n`` (1-based) waits a random time up to ``min(max_s, base_s * 2**(n-1))``."""

    base_s: float = 0.2
    max_s: float = 10.0
    attempts: int = 5  # calls in all; 0 means retry for ever

    def retrying(
        self,
        transient: tuple[type[BaseException], ...],
        until: asyncio.Event | None = None,
        after: Hook | None = None,
    ) -> AsyncRetrying:
        """Retry on ``transient`` errors until ``attempts`` calls failed or ``until`` is set;
        then the last error is raised as it was. ``after`` runs after each failed call that
        is retried or ends the loop, before the wait."""
        stop: stop_base = stop_after_attempt(self.attempts) if self.attempts else stop_never
        if until is not None:
            stop = stop_any(stop, _Until(until))
        return AsyncRetrying(
            retry=retry_if_exception_type(transient),
            wait=wait_random_exponential(multiplier=self.base_s, max=self.max_s),
            stop=stop,
            reraise=True,
            after=after or after_nothing,
        )


async def retry(
    fn: Callable[[], Awaitable[T]], policy: Backoff, transient: tuple[type[BaseException], ...]
) -> T:
    """``fn()``, retried under ``policy`` after a transient failure.

    The first call is made directly: a call through tenacity costs about 34 us even when it
    succeeds at once (0.2 us this way), and the stream worker hands every record it produces
    through here. Only a failed call enters tenacity, whose first attempt re-raises that
    failure, so the first wait comes before the second call and ``attempts`` counts calls."""
    try:
        return await fn()
    except transient as exc:
        failed: BaseException | None = exc
    async for attempt in policy.retrying(transient):
        with attempt:
            if failed is not None:
                first, failed = failed, None
                raise first
            return await fn()
    raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover
