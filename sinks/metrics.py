"""Prometheus metrics of the sinks, served on ``[sinks] metrics_port`` (0 = off)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROWS = Counter(
    "pipeline_sink_rows_written",
    "Kafka records written by a sink (one commit per batch; idempotent writes may skip some)",
    ["sink"],
)
FLUSH_SECONDS = Histogram(
    "pipeline_sink_flush_seconds",
    "Duration of a successful batch write, by sink",
    ["sink"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "pipeline_sink_batch_size",
    "Records per batch, by sink",
    ["sink"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
UP = Gauge(
    "pipeline_sink_up",
    "1 while the sink writes, 0 while its database is unreachable and consumption is paused",
    ["sink"],
)
RETRIES = Counter(
    "pipeline_sink_retries",
    "Failed attempts to start a sink or write a batch (each one is retried with backoff)",
    ["sink"],
)


def register(sink: str) -> None:
    """Make every series of a sink exist from its start (at 0), so that rates work at once."""
    for metric in (ROWS, RETRIES, FLUSH_SECONDS, BATCH_SIZE):
        metric.labels(sink)
