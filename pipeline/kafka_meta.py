"""A topic's partitions, for a consumer that has not subscribed to it: the one place that
reaches into aiokafka's client.

No public aiokafka call gives them. ``AIOKafkaConsumer.partitions_for_topic`` stays empty for
a topic the consumer does not read; ``AIOKafkaAdminClient.describe_topics`` asks for the named
topics, which a broker with ``auto.create.topics.enable`` creates. The consumer's own client
fetches the metadata of every existing topic, creating none. tests/unit/test_kafka_meta.py
fails when aiokafka changes what this relies on.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    """The topic's partitions, sorted; empty when the topic does not exist."""
    cluster = await consumer._client.fetch_all_metadata()
    return sorted(cluster.partitions_for_topic(topic) or ())
