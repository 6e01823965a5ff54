"""Entry point of the ingest service: ``pipeline-ingest`` (uvicorn serving ``create_app``)."""

from __future__ import annotations

import sys

import uvicorn

from ingest.app import create_app
from pipeline.logs import configure_logging
from pipeline.settings import ConfigError, load_settings


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"pipeline-ingest: {exc}")
    configure_logging(settings.log_level)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.ingest.host,
        port=settings.ingest.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
