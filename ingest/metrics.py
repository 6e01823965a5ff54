"""Prometheus metrics of the ingest process, served on ``[ingest] metrics_port`` (0 = off).

Never on the public HTTP port: providers reach that one from the internet, and the counters
tell who sends what and how often. The listener is internal, like the streams' and sinks'.

Labels stay bounded: ``provider`` is one of the known providers (anything else is ``other``),
``reason`` is one of the verifiers' fixed, secret-free reasons.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Histogram, start_http_server

from domain.model import PROVIDERS

REQUESTS = Counter(
    "pipeline_ingest_requests",
    "HTTP requests answered, by endpoint, webhook provider and status code",
    ["endpoint", "provider", "code"],
)
VERIFY_FAILURES = Counter(
    "pipeline_ingest_verification_failures",
    "Webhooks whose signature check failed, by provider and reason",
    ["provider", "reason"],
)
KAFKA_WRITE_SECONDS = Histogram(
    "pipeline_ingest_kafka_write_seconds",
    "Time until the broker acknowledged a raw record (acks=all), by outcome",
    ["outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SHED = Counter(
    "pipeline_ingest_shed",
    "Webhooks answered 503 at once because too many were waiting for the broker (overload)",
)
BODY_BYTES = Histogram(
    "pipeline_ingest_body_bytes",
    "Size of webhook bodies received, by provider",
    ["provider"],
    buckets=(256, 512, 1024, 2048, 4096, 8192, 16384, 65536, 262144, 1048576),
)


def provider_label(name: str) -> str:
    return name if name in PROVIDERS else "other"


def _endpoint(path: str) -> tuple[str, str]:
    """(endpoint, provider) of a request path, from a fixed set of names."""
    parts = path.strip("/").split("/")
    head = parts[0]
    if head == "webhooks" and len(parts) == 2:
        return "webhook", provider_label(parts[1])
    if head == "transactions" and len(parts) == 3:
        return "transaction", provider_label(parts[1])
    if head in ("checkouts", "health", "ready", "metrics", "dashboard"):
        return head, ""
    return "other", ""


def MetricsMiddleware(app: ASGIApp) -> ASGIApp:
    """Counts every HTTP answer by endpoint, provider and status code."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        code = 500  # an exception that escapes the app is answered 500 by the server

        async def send_counting(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, send_counting)
        finally:
            endpoint, provider = _endpoint(scope["path"])
            REQUESTS.labels(endpoint, provider, str(code)).inc()

    return middleware


def serve(host: str, port: int) -> Callable[[], None]:
    """Start the /metrics listener in a daemon thread when a port is set; returns its stop."""
    if port <= 0:
        return lambda: None
    server, _ = start_http_server(port, addr=host)

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop
