"""Prometheus metrics of the stream worker, served on ``[streams] metrics_port`` (0 = off).

Counted where the agents decide; never read back, never part of state.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

NORMALIZED = Counter(
    "pipeline_streams_normalized",
    "Records read from webhooks.raw and normalized, by provider and kind (event or checkout)",
    ["provider", "kind"],
)
DEAD_LETTERS = Counter(
    "pipeline_streams_dead_letters",
    "Records sent to the dead-letter topic, by stage",
    ["stage"],
)
EVENTS = Counter(
    "pipeline_streams_events",
    "Payment events through the state machine, by outcome (applied, duplicate, refused)",
    ["outcome"],
)
LATENCY = Histogram(
    "pipeline_streams_processing_latency_seconds",
    "From receipt at ingest to the transition written by the stream worker, by provider",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

#: children bound once (``labels`` costs a lock and a dict lookup per call)
DEAD_LETTERS_BY = {stage: DEAD_LETTERS.labels(stage) for stage in ("normalize", "apply")}
EVENTS_BY = {outcome: EVENTS.labels(outcome) for outcome in ("applied", "duplicate", "refused")}
_bound: dict[tuple[str, ...], Any] = {}


def normalized(provider: str, kind: str) -> Any:
    """The bound counter of ``NORMALIZED`` for a provider and kind (providers come from data)."""
    key = ("n", provider, kind)
    if key not in _bound:
        _bound[key] = NORMALIZED.labels(provider, kind)
    return _bound[key]


def latency(provider: str) -> Any:
    """The bound histogram of ``LATENCY`` for a provider."""
    key = ("l", provider)
    if key not in _bound:
        _bound[key] = LATENCY.labels(provider)
    return _bound[key]
