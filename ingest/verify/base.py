"""What every verifier shares: its one exception type, the clock, constant-time HMAC checks."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

Clock = Callable[[], float]
Headers = Mapping[str, str]

TOLERANCE_S = 5 * 60


class SignatureError(Exception):
    """The request is not authentic, or cannot be checked. ``reason`` is safe to show: it never
    holds a secret. ``status`` is the answer: 401, or 400/413 for a body that cannot be checked.
    """

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Verifier(Protocol):
    """Checks one request; raises SignatureError or returns None."""

    #: request headers worth keeping in the raw record (lower case)
    kept_headers: tuple[str, ...]

    def verify(self, body: bytes, headers: Headers) -> None: ...


def system_clock() -> float:
    return time.time()


def require_header(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"missing {name} header")
    return value


def hmac_hex(secret: bytes, message: bytes, digest: str = "sha256") -> str:
    """One-shot (OpenSSL's HMAC in one call: a third of the cost of ``hmac.new`` objects)."""
    return hmac.digest(secret, message, digest).hex()


def any_matches(given: str, candidates: Iterable[str]) -> bool:
    """Constant-time comparison against every candidate (no early exit between secrets)."""
    given_b = given.strip().lower().encode()
    ok = False
    for c in candidates:
        ok |= hmac.compare_digest(given_b, c.encode())
    return ok


def check_fresh(ts: float, now: float, tolerance: float = TOLERANCE_S) -> None:
    if abs(now - ts) > tolerance:
        raise SignatureError("timestamp outside the 5-minute window")
