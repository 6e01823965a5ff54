"""What streams.faust_glue relies on inside faust-streaming: these fail when Faust changes it."""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

import faust
import faust.streams as faust_streams

from streams.faust_glue import AckedTable, as_current

#: the body of faust.Table.on_key_set that AckedTable.on_key_set repeats, keeping the future
FAUST_ON_KEY_SET = """\
def on_key_set(self, key: KT, value: VT) -> None:
    \"\"\"Call when the value for a key in this table is set.\"\"\"
    fut = self.send_changelog(self.partition_for_key(key), key, value)
    # partition may be None, in which case the finalized partition
    # is in fut.partition
    partition = fut.message.partition
    assert partition is not None
    self._maybe_set_key_ttl(key, partition)
    self._sensor_on_set(self, key, value)
"""


def test_faust_table_on_key_set_is_still_what_acked_table_repeats() -> None:
    source = textwrap.dedent(inspect.getsource(faust.Table.on_key_set))
    assert source == FAUST_ON_KEY_SET


def test_acked_table_keeps_every_changelog_future_until_taken() -> None:
    sent: list[object] = []

    class Fut:
        class message:  # the shape of faust's FutureMessage.message
            partition = 3

    table: Any = AckedTable.__new__(AckedTable)
    table.send_changelog = lambda p, k, v: sent.append((p, k, v)) or Fut()
    table.partition_for_key = lambda key: 3
    table._maybe_set_key_ttl = lambda key, partition: None
    table._sensor_on_set = lambda t, key, value: None
    AckedTable.on_key_set(table, b"k1", b"v1")
    AckedTable.on_key_set(table, b"k2", b"v2")
    assert sent == [(3, b"k1", b"v1"), (3, b"k2", b"v2")]
    assert len(table.take_unacked()) == 2
    assert table.take_unacked() == []


def test_as_current_sets_and_restores_fausts_current_event() -> None:
    class Event:
        pass

    event = Event()
    assert faust_streams.current_event() is None
    with as_current(event):  # type: ignore[arg-type]
        assert faust_streams.current_event() is event
    assert faust_streams.current_event() is None
