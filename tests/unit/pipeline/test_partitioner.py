"""The producers' partitioner: a cache in front of Kafka's default murmur2 partitioner."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from pipeline.partitioner import CachedPartitioner


def test_the_cached_partitioner_picks_what_kafkas_default_picks() -> None:
    cached, default = CachedPartitioner(size=50), DefaultPartitioner()
    rng = random.Random(3)
    keys = [rng.randbytes(rng.randrange(0, 60)) for _ in range(200)]
    for n in (1, 4, 7):
        parts = list(range(n))
        for key in keys + keys:  # the second pass reads the cache (cleared once full)
            assert cached(key, parts, parts) == default(key, parts, parts)
