"""Entry point of the stream worker: ``pipeline-streams`` (a Faust worker)."""

from __future__ import annotations

from pipeline.entry import serve_metrics, settings_or_exit
from streams.faust_app import StreamWorker
from streams.topology import create_app


def main() -> None:
    settings = settings_or_exit("pipeline-streams")
    app = create_app(settings)
    serve_metrics(settings.streams.metrics_host, settings.streams.metrics_port)
    StreamWorker(app, loglevel=settings.log_level.lower(), quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
