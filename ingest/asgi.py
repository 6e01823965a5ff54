"""ASGI entry for servers that import an app factory by path (uvicorn, granian): settings
built here."""

from __future__ import annotations

from litestar import Litestar

from ingest.app import create_app
from pipeline.logs import configure_logging
from pipeline.settings import load_settings


def app_factory() -> Litestar:
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
