"""Errors of the stream processor. Each becomes a dead-letter record with its reason."""


class NormalizeError(ValueError):
    """An authentic payload that cannot be turned into payment events."""


class StateLimit(ValueError):
    """A record that would grow one payment's state past its bound (streams.limits): the
    record goes to the dead-letter topic, the payment keeps its state, the stream goes on."""
