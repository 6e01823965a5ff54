"""The retry policy (tenacity under ``pipeline.retry``): what is retried, how often, how long
it waits, and that the result of the call that finally succeeds is what the caller gets."""

from __future__ import annotations

import asyncio
import random

import pytest
from tenacity import RetryCallState

from pipeline.retry import Backoff, retry

FAST = Backoff(base_s=0.001, max_s=0.005, attempts=5)


class Flaky:
    """Fails ``failures`` times with ``error``, then answers with the number of its call."""

    def __init__(self, failures: int, error: type[Exception] = OSError) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return self.calls


async def test_a_call_that_fails_twice_then_succeeds_returns_its_result() -> None:
    flaky = Flaky(2)
    assert await retry(flaky, FAST, (OSError,)) == 3
    assert flaky.calls == 3


async def test_attempts_count_calls_and_the_last_error_is_raised_as_it_was() -> None:
    flaky = Flaky(10)
    with pytest.raises(OSError, match="failure 5"):
        await retry(flaky, FAST, (OSError,))
    assert flaky.calls == 5


async def test_a_call_that_succeeds_at_once_is_called_once() -> None:
    flaky = Flaky(0)
    assert await retry(flaky, FAST, (OSError,)) == 1


async def test_an_error_that_is_not_transient_is_not_retried() -> None:
    flaky = Flaky(1, ValueError)
    with pytest.raises(ValueError):
        await retry(flaky, FAST, (OSError,))
    assert flaky.calls == 1


async def test_the_first_retry_waits_before_calling_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The direct first call's failure enters tenacity as its first attempt: one wait, then
    the second call; never two calls back to back."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)  # the cap, no jitter
    flaky = Flaky(1)
    started = asyncio.get_running_loop().time()
    await retry(flaky, Backoff(base_s=0.2, max_s=1.0, attempts=3), (OSError,))
    assert asyncio.get_running_loop().time() - started >= 0.2
    assert flaky.calls == 2


async def test_for_ever_until_the_event_is_set_and_after_runs_after_each_failure() -> None:
    stop, seen = asyncio.Event(), []
    flaky = Flaky(100)

    def after(state: RetryCallState) -> None:
        seen.append(state.attempt_number)
        if state.attempt_number == 7:
            stop.set()

    with pytest.raises(OSError, match="failure 7"):
        async for attempt in Backoff(0.001, 0.002, attempts=0).retrying((OSError,), stop, after):
            with attempt:
                await flaky()
    assert seen == [1, 2, 3, 4, 5, 6, 7]


def test_waits_grow_exponentially_up_to_the_cap_with_full_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wait = Backoff(base_s=0.5, max_s=4.0).retrying((OSError,)).wait

    def waits(pick: float) -> list[float]:
        monkeypatch.setattr(random, "uniform", lambda low, high: low + (high - low) * pick)
        return [wait(_state(n)) for n in range(1, 6)]

    assert waits(1.0) == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert waits(0.25) == [0.125, 0.25, 0.5, 1.0, 1.0]
    assert waits(0.0) == [0.0] * 5  # full jitter: anywhere from nothing to the cap


def _state(attempt_number: int) -> RetryCallState:
    state = RetryCallState(None, None, (), {})
    state.attempt_number = attempt_number
    return state
