"""Entry point of the stream worker: ``pipeline-streams`` (a Faust worker)."""

from __future__ import annotations

import os
import sys
from typing import Any

import faust

from pipeline.settings import ConfigError, load_settings
from streams import READY_LINE, metrics
from streams.app import create_app


class StreamWorker(faust.Worker):
    """A Faust worker for a service: no terminal spinner (at WARNING and above it turns the
    root logger to DEBUG, and every library then builds debug records), and one line on
    stderr when it is ready, whatever the log level (the local stack's launcher waits for it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        os.write(2, f"{READY_LINE}\n".encode())  # below Faust's redirection of sys.stderr


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
