"""Prometheus metrics of the notifier, served on ``[notify] metrics_port`` (0 = off).

Endpoints are labelled by scheme, host and path only: a query string may carry a token."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge, Histogram

QUEUED = Counter(
    "pipeline_notify_queued", "Deliveries offered to the outbox (a re-sent one is counted again)",
    ["endpoint"],
)  # fmt: skip
ATTEMPTS = Counter(
    "pipeline_notify_attempts",
    "HTTP attempts by result: delivered, retry (5xx, 429, 3xx, timeout, error), permanent (4xx)",
    ["endpoint", "result"],
)
DEAD = Counter("pipeline_notify_dead_letters", "Deliveries given up (dead-lettered)", ["endpoint"])
LATENCY = Histogram(
    "pipeline_notify_request_seconds",
    "Duration of one HTTP attempt, by endpoint",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LAG = Histogram(
    "pipeline_notify_delivery_seconds",
    "From the transition's publication to its 2xx answer",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 300, 3600, 86400),
)
BACKLOG = Gauge(
    "pipeline_notify_backlog", "Deliveries not yet delivered nor given up", ["endpoint"]
)
RETRYING = Gauge(
    "pipeline_notify_retrying", "Backlog deliveries that failed at least once", ["endpoint"]
)
IN_FLIGHT = Gauge("pipeline_notify_in_flight", "Requests under way", ["endpoint"])


def label(url: str) -> str:
    u = urlsplit(url)
    return f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}{u.path}"


@dataclass(frozen=True, slots=True)
class Series:
    """One endpoint's series, bound once: ``labels()`` looks its child up, under a lock, on
    every call."""

    name: str
    queued: Any
    delivered: Any
    retry: Any
    permanent: Any
    dead: Any
    latency: Any
    lag: Any
    backlog: Any
    retrying: Any
    in_flight: Any

    def attempts(self, result: str) -> Any:
        return {"delivered": self.delivered, "retry": self.retry}.get(result, self.permanent)


@cache
def series(url: str) -> Series:
    e = label(url)
    return Series(
        e, QUEUED.labels(e), ATTEMPTS.labels(e, "delivered"), ATTEMPTS.labels(e, "retry"),
        ATTEMPTS.labels(e, "permanent"), DEAD.labels(e), LATENCY.labels(e), LAG.labels(e),
        BACKLOG.labels(e), RETRYING.labels(e), IN_FLIGHT.labels(e),
    )  # fmt: skip


def register(url: str) -> None:
    """Every series of an endpoint exists from the start (at 0), so that rates work at once."""
    s = series(url)
    for gauge in (s.backlog, s.retrying, s.in_flight):
        gauge.set(0)
