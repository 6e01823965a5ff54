"""A second ingest, in this process: ``create_app`` under uvicorn on a free port, in a thread,
wired to the real stack's Kafka and Postgres, for settings the stack's own ingest does not
have (a short body deadline, an RS256 key, CORS origins, a clock that can be moved)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from pydantic import SecretStr

from ingest.app import create_app
from ingest.verify.base import Clock, system_clock
from pipeline.settings import ProviderSettings, Settings
from stack.launcher import StackInfo
from stack.proc import free_port


def stack_settings(
    settings: Settings,
    stack: StackInfo,
    providers: ProviderSettings | None = None,
    **ingest: Any,
) -> Settings:
    """The test settings pointed at the running stack, with ``ingest`` keys (and the providers)
    replaced."""
    return settings.model_copy(
        update={
            "providers": providers or settings.providers,
            "kafka": settings.kafka.model_copy(update={"bootstrap": stack.kafka_bootstrap}),
            "postgres": settings.postgres.model_copy(update={"dsn": SecretStr(stack.postgres_dsn)}),
            "clickhouse": settings.clickhouse.model_copy(update={"url": stack.clickhouse_url}),
            "ingest": settings.ingest.model_copy(update=ingest),
        }
    )


@contextmanager
def serve(settings: Settings, clock: Clock = system_clock) -> Iterator[str]:
    """Run ingest until the block ends; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, clock=clock),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"ingest-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("in-process ingest did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
