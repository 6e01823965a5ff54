"""Ids for raw records and requests: 32 hex digits, unique without a system call each.

A random 64-bit prefix drawn once per process (again in a forked child) and a counter:
``uuid4()`` reads the kernel's random source on every call, which cost 4 % of ingest's CPU
under load on this VM. The ids need to be unique, not secret: they name records, they
authorize nothing.

``request_id`` is the one rule for ``X-Request-ID``, for the Litestar routes
(``ingest.middleware``) and the raw webhook route (``ingest.fastpath``) alike. Litestar has
no request-id option of its own (docs/decisions/0080-libraries.md).
"""

from __future__ import annotations

import itertools
import os
import re

import structlog

_prefix = ""
_counter = itertools.count()


def _reset() -> None:
    global _prefix, _counter
    _prefix, _counter = os.urandom(8).hex(), itertools.count()


_reset()
os.register_at_fork(after_in_child=_reset)


def new_id() -> str:
    return f"{_prefix}{next(_counter):016x}"


_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(given: str) -> str:
    """The caller's ``X-Request-ID`` when it is a short safe token (it goes back in a header
    and into the logs as it is), else a new id; bound to this request's log lines."""
    rid = given if _SAFE.match(given) else new_id()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid)
    return rid
