"""The notifier's exceptions."""

from __future__ import annotations


class BadTransition(ValueError):
    """A transition record the notifier cannot read (it is dead-lettered, never retried)."""
