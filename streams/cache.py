"""Decoded table entries of one worker's payments, so that a payment seen again soon is not
read from the store and decoded again (decision 0007)."""

from __future__ import annotations

from domain.records import Entry


class EntryCache:
    """Newest last, at most ``size`` entries. Cleared whenever partitions move, since another
    worker may then change an entry."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[bytes, Entry] = {}

    def get(self, key: bytes) -> Entry | None:
        return self._entries.get(key)

    def put(self, key: bytes, entry: Entry) -> None:
        self._entries.pop(key, None)
        self._entries[key] = entry
        if len(self._entries) > self.size:
            del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        self._entries.clear()
