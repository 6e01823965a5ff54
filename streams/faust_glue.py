"""The few places where the worker reaches into Faust beyond its documented API, in one place.

Each is covered by tests/unit/streams/test_faust_glue.py, which fails when faust-streaming
changes what is relied on here (decision 0005, decision 0006).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
import faust.streams as faust_streams
from faust.types import EventT
from faust.types.tuples import FutureMessage


@contextmanager
def as_current(event: EventT[Any]) -> Iterator[None]:
    """Make ``event`` Faust's current event, as during its own iteration: a table write takes
    its store and its changelog partition from the current event. A batch (``take_events``)
    has none of its own; Faust sets the same context variable when it delivers one event."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


class AckedTable(faust.Table[Any, Any]):
    """A table whose changelog deliveries can be awaited (``take_unacked``).

    Faust's ``Table.on_key_set`` sends the changelog record and drops the future: a failed
    delivery would go unnoticed while the source offsets commit. This is the same method,
    keeping the future, so that a batch commits only after its changelog is acknowledged."""

    def on_key_set(self, key: Any, value: Any) -> None:
        fut = self.send_changelog(self.partition_for_key(key), key, value)
        self.__dict__.setdefault("_unacked", []).append(fut)
        partition = fut.message.partition
        assert partition is not None
        self._maybe_set_key_ttl(key, partition)
        self._sensor_on_set(self, key, value)

    def take_unacked(self) -> list[FutureMessage]:
        """The changelog deliveries sent since the last call."""
        unacked: list[FutureMessage] = self.__dict__.pop("_unacked", [])
        return unacked
