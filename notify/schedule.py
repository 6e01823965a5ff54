"""When a failed delivery is tried again, and when it is given up: pure.

Retry ``n`` (1-based) waits between half and all of ``min(first * factor**(n-1), max)``
("equal jitter": never sooner than half, so the schedule still grows, and spread so that an
endpoint coming back is not hit by every delivery at once). Defaults: 4-8 s, 12-24 s, 36-72 s,
... up to 3-6 h; given up three days after the transition (about 20 attempts).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"  # 4xx other than 429: never retried


def verdict(status_code: int | None) -> Verdict:
    """``None``: a timeout or connection error (retried). Redirects are not followed: a 3xx
    is retried like a 5xx, since the endpoint may be fixed in place."""
    if status_code is None:
        return Verdict.RETRY
    if 200 <= status_code < 300:
        return Verdict.DELIVERED
    if 400 <= status_code < 500 and status_code != 429:
        return Verdict.PERMANENT
    return Verdict.RETRY


@dataclass(frozen=True, slots=True)
class Schedule:
    first_s: float = 8.0
    factor: float = 3.0
    max_s: float = 6 * 3600.0
    give_up_after_s: float = 3 * 24 * 3600.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before retry number ``attempt`` (1 = the retry after the first failure)."""
        cap = min(self.max_s, self.first_s * self.factor ** min(attempt - 1, 64))
        return cap / 2 + cap / 2 * rand()

    def next_try(
        self, age_s: float, attempt: int, rand: Callable[[], float] = random.random
    ) -> float | None:
        """Seconds until the next try of a delivery ``age_s`` old that failed ``attempt``
        times; None when that try would fall past ``give_up_after_s`` (dead letter)."""
        wait = self.delay(attempt, rand)
        return None if age_s + wait > self.give_up_after_s else wait
