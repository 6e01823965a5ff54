"""What every process's entry point does first: read its settings (a bad config is one line
and a non-zero exit, before anything starts), then for the asyncio services, logging, the
internal /metrics listener and the service itself."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import start_http_server

from pipeline.logs import configure_logging
from pipeline.settings import ConfigError, Settings, load_settings


def settings_or_exit(command: str) -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        sys.exit(f"{command}: {exc}")


def serve_metrics(host: str, port: int) -> None:
    """The /metrics listener in a daemon thread, when a port is configured."""
    if port > 0:
        start_http_server(port, addr=host)


def run_service(
    command: str,
    serve: Callable[[Settings], Coroutine[Any, Any, None]],
    metrics_at: Callable[[Settings], tuple[str, int]],
) -> None:
    settings = settings_or_exit(command)
    configure_logging(settings.log_level)
    serve_metrics(*metrics_at(settings))
    asyncio.run(serve(settings))
