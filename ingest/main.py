"""Entry point of the ingest service: ``pipeline-ingest``, uvicorn serving ``create_app``.

uvicorn (httptools, uvloop) with a deadline for every request's headers of our own
(``ingest.headers_deadline``, ``[ingest] header_timeout_s``): a connection that opens and
trickles or withholds its headers (slowloris) is closed then, as granian did (decision 0011).
uvicorn because it costs about half of granian's CPU per request at the rates ingest sees
(decision 0016: granian hands each request from its Rust thread to the event loop and back).
HTTP/1.1 only; one process (scale out with more ingest processes behind the load balancer).

``server`` still builds granian with the settings it would need (``bench/serve.py`` measures
it): its ``backpressure`` counts open *connections*, idle keep-alive ones included, and at its
default (1,024) a client with more connections than that had the rest wait unanswered until
they timed out, 3.8 % of the requests at 1,000/s offered. uvicorn accepts every connection;
overload is answered 503 by the app (``[ingest] max_inflight``).
"""

from __future__ import annotations

import resource
from typing import Any

import uvicorn
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server
from granian.server.common import AbstractServer

from ingest.headers_deadline import with_header_timeout
from pipeline.entry import settings_or_exit, tune_gc
from pipeline.settings import IngestSettings

TARGET = "ingest.asgi:app_factory"
#: the listen queue (Linux caps it at net.core.somaxconn, 4,096 by default)
BACKLOG = 4096


def connection_limit() -> int:
    """Open connections granian accepts at once: what the file limit leaves, kept for the
    process's own files and its broker and database sockets."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65536
    return max(BACKLOG // 4, min(65536, soft - 256))


def server(cfg: IngestSettings, target: str = TARGET) -> AbstractServer[Any]:
    """Granian as ingest ran on it until decision 0016 (one worker, header timeout), with its
    connection limit from the file limit: for measuring against."""
    return Server(
        target,
        address=cfg.host,
        port=cfg.port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=1,
        backlog=BACKLOG,
        backpressure=connection_limit(),
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=int(cfg.header_timeout_s * 1000)),
        log_level=LogLevels.warning,
        log_access=False,
    )


def uvicorn_config(cfg: IngestSettings, target: str = TARGET) -> uvicorn.Config:
    """uvicorn with httptools and uvloop, and the header deadline of ``ingest.headers_deadline``
    (uvicorn has none of its own); one process."""
    return uvicorn.Config(
        target,
        factory=True,
        host=cfg.host,
        port=cfg.port,
        http=with_header_timeout(cfg.header_timeout_s),
        loop="uvloop",
        backlog=BACKLOG,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,  # no "server: uvicorn" banner to the internet
    )


def main() -> None:
    settings = settings_or_exit("pipeline-ingest")  # a config error is one line, before any worker
    import ingest.asgi  # noqa: F401  the app's modules, loaded before the collector is tuned

    tune_gc()
    uvicorn.Server(uvicorn_config(settings.ingest)).run()


if __name__ == "__main__":
    main()
