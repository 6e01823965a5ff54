"""Exponential backoff with full jitter, bounded: the one retry policy of every process."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float = 0.2
    max_s: float = 10.0
    attempts: int = 5  # 0 means retry for ever

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): full jitter."""
        cap = min(self.max_s, self.base_s * (2 ** (attempt - 1)))
        return float(cap * rand())


async def retry(
    fn: Callable[[], Awaitable[T]],
    policy: Backoff,
    transient: tuple[type[BaseException], ...],
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds; re-raise after ``policy.attempts`` transient failures."""
    attempt = 0
    while True:
        try:
            return await fn()
        except transient as exc:
            attempt += 1
            if policy.attempts and attempt >= policy.attempts:
                raise
            if on_retry is not None:
                on_retry(attempt, exc)
            await asyncio.sleep(policy.delay(attempt))
