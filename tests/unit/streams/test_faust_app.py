"""How the worker's Faust app is configured."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from pipeline.partitioner import CachedPartitioner
from pipeline.settings import Settings
from streams.faust_app import faust_app


async def test_the_workers_producer_partitions_as_kafkas_default_does(settings: Settings) -> None:
    producer = faust_app(settings).producer
    client = producer._new_producer()  # aiokafka's, as Faust builds it (not started)
    partition, default = client._partitioner, DefaultPartitioner()
    parts = list(range(6))
    for key in (b"coinbase:abc", b"btcpay:inv-1", b"x" * 80):
        assert partition(key, parts, parts) == default(key, parts, parts)
    assert isinstance(partition, CachedPartitioner)  # the cache, not a second murmur2 per record
