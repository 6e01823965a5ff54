"""Kafka's default partitioner with the hash of recent keys kept, for every producer of ours.

aiokafka's murmur2 is pure Python: about 4 % of ingest's CPU and 3 % of the stream worker's
(py-spy), and a payment's records (its webhooks, the providers' redeliveries, its state and
transition records) share one key. The partition stays exactly what the default gives (the
Java clients', Faust's), so records of one key keep landing where they always did; the cache
only saves recomputing it.
"""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner, murmur2


class CachedPartitioner:
    def __init__(self, size: int = 65536) -> None:
        self._size = size
        self._hashes: dict[bytes, int] = {}
        self._default = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:  # the default's random pick among the available partitions
            return int(self._default(key, all_partitions, available))
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) >= self._size:
                self._hashes.clear()  # bounded; cheaper than an LRU and as good here
            h = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[h % len(all_partitions)]
