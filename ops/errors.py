"""Errors of the SRE tools: each ends the command with a non-zero exit and one line."""


class OpsError(Exception):
    """A command cannot do what was asked; the message says why in one line."""
