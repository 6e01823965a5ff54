"""Entry point of the dashboard: ``pipeline-dashboard`` (``python -m dashboard``), uvicorn
serving ``create_app`` on ``[dashboard] host``/``port``.

The same image as the other services, another command. uvicorn as for ingest, with the same
deadline for a request's headers (``ingest.headers_deadline``: a slowloris client is cut off).
"""

from __future__ import annotations

import uvicorn
from litestar import Litestar

from dashboard.app import create_app
from ingest.headers_deadline import with_header_timeout
from pipeline.entry import settings_or_exit
from pipeline.logs import configure_logging
from pipeline.settings import DashboardSettings


def uvicorn_config(app: Litestar, cfg: DashboardSettings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        http=with_header_timeout(cfg.header_timeout_s),
        loop="uvloop",
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


def main() -> None:
    settings = settings_or_exit("pipeline-dashboard")
    configure_logging(settings.log_level)
    uvicorn.Server(uvicorn_config(create_app(settings), settings.dashboard)).run()


if __name__ == "__main__":
    main()
