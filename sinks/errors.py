"""Errors of the sinks."""


class SinkUnavailable(Exception):
    """The database could not be reached; the batch is retried, nothing is lost."""


class RecordRefused(Exception):
    """Something in the batch cannot be written (undecodable, or refused by the database for
    its data): the loop writes the batch record by record and dead-letters the ones refused."""
