"""Errors of the sinks."""


class SinkUnavailable(Exception):
    """The database refused or could not be reached; the batch is retried, nothing is lost."""
