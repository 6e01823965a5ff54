"""Errors of the dashboard; each maps to one HTTP answer with a readable ``detail``."""


class SourceUnavailable(Exception):
    """A data source of the dashboard (Postgres, ClickHouse, Kafka) did not answer: 503."""
