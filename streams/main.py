"""Entry point of the stream worker: ``pipeline-streams`` (a Faust worker)."""

from __future__ import annotations

import sys

from pipeline.settings import ConfigError, load_settings
from streams import metrics
from streams.faust_app import StreamWorker
from streams.topology import create_app


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"pipeline-streams: {exc}")
    app = create_app(settings)
    metrics.serve(settings.streams.metrics_host, settings.streams.metrics_port)
    StreamWorker(app, loglevel=settings.log_level.lower(), quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
