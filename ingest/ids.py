"""Ids for raw records and requests: 32 hex digits, unique without a system call each.

A random 64-bit prefix drawn once per process (again in a forked child) and a counter:
``uuid4()`` reads the kernel's random source on every call, which cost 4 % of ingest's CPU
under load on this VM. The ids need to be unique, not secret: they name records, they
authorize nothing.
"""

from __future__ import annotations

import itertools
import os

_prefix = ""
_counter = itertools.count()


def _reset() -> None:
    global _prefix, _counter
    _prefix, _counter = os.urandom(8).hex(), itertools.count()


_reset()
os.register_at_fork(after_in_child=_reset)


def new_id() -> str:
    return f"{_prefix}{next(_counter):016x}"
