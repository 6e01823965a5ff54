"""Entry point of the stream worker: ``pipeline-streams`` (a Faust worker)."""

from __future__ import annotations

import sys

import faust

from pipeline.settings import ConfigError, load_settings
from streams.app import create_app


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"pipeline-streams: {exc}")
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
