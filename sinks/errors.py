"""Errors of the sinks."""

import asyncpg

#: Postgres away, restarting or shutting down: the write waits and is retried
POSTGRES_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection left mid-operation by a server that went away
    asyncpg.exceptions.OperatorInterventionError,  # admin or crash shutdown, query canceled
    TimeoutError,
)


class SinkUnavailable(Exception):
    """The database could not be reached; the batch is retried, nothing is lost."""


class RecordRefused(Exception):
    """Something in the batch cannot be written (undecodable, or refused by the database for
    its data): the loop writes the batch record by record and dead-letters the ones refused."""
