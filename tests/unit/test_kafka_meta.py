"""What ``pipeline.kafka_meta`` relies on in aiokafka is still there."""

from __future__ import annotations

import inspect

from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata


async def test_a_consumer_has_a_client_that_fetches_all_topics_metadata() -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9")  # never started
    assert isinstance(consumer._client, AIOKafkaClient)
    assert inspect.iscoroutinefunction(consumer._client.fetch_all_metadata)
    cluster = ClusterMetadata()
    assert cluster.partitions_for_topic("none") is None  # an unknown topic: no partitions
