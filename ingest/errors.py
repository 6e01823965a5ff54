"""Errors of the ingest service; each maps to one HTTP answer with a readable ``detail``."""


class BrokerUnavailable(Exception):
    """Kafka did not acknowledge the write in time: answer 503 with Retry-After."""
