"""A coroutine run at once, up to its first suspension, as Python 3.12's eager tasks do: most of
the awaits on a hot path complete without suspending (a record already delivered, a body
already received), and whatever would be set up around a wait (a task, a timer) is needed only
for those that do suspend (decisions 0008, 0140)."""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any


def step(coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Run ``coro`` up to its first suspension: ``(True, its result)`` if it completed, else
    ``(False, resumed)``, where ``resumed`` is an awaitable that goes on with it."""
    try:
        pending = coro.send(None)
    except StopIteration as done:
        return True, done.value
    return False, Resumed(coro, pending)


class Resumed:
    """An awaitable that goes on with a coroutine already run up to its first suspension,
    where it yielded ``pending`` (what it waits for) to whoever drives it."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                try:
                    yield pending
                except BaseException as exc:  # thrown in by the driving task (a cancellation)
                    pending = coro.throw(exc)
                else:
                    pending = coro.send(None)
            except StopIteration as done:
                return done.value
