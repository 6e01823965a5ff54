"""Entry point of the stream worker: ``pipeline-streams`` (a Faust worker)."""

from __future__ import annotations

import sys

import faust

from pipeline.settings import ConfigError, load_settings
from streams import metrics
from streams.app import create_app


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"pipeline-streams: {exc}")
    app = create_app(settings)
    metrics.serve(settings.streams.metrics_host, settings.streams.metrics_port)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG at WARNING and above, which
    # makes every library build its debug records: no spinner in a service
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
