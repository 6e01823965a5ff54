"""Entry point of the ingest service: ``pipeline-ingest``, granian serving ``create_app``.

Granian (hyper underneath) because it bounds the time a client may take to send a request's
headers (``[ingest] header_timeout_s``): a connection that opens and trickles or withholds its
headers (slowloris) is closed then, which uvicorn cannot do. HTTP/1.1 only: HTTP/2 has no such
bound in granian, and providers send HTTP/1.1 (decision 0011).

Granian's ``backpressure`` counts open *connections*, idle keep-alive ones included, not
requests: at its default (the listen backlog, 1,024) a client with more connections than that
(a load balancer, a provider's retry storm, the load generator under overload) had the rest
wait unanswered in the kernel's queue until they timed out, 3.8 % of the requests at 1,000/s
offered (decision 0016). Connections are bounded by the process's file limit instead; every
connection is still closed by the header and body deadlines, and overload is answered 503 by
the app (``[ingest] max_inflight``).
"""

from __future__ import annotations

import resource
import sys
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server
from granian.server.common import AbstractServer

from pipeline.settings import ConfigError, IngestSettings, load_settings

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
    """One worker process (scale out with more ingest processes behind the load balancer)."""
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


def main() -> None:
    try:
        settings = load_settings()  # here first: a config error is one line, before any worker
    except ConfigError as exc:
        sys.exit(f"pipeline-ingest: {exc}")
    server(settings.ingest).serve()


if __name__ == "__main__":
    main()
