"""The dashboard's session cookie: set by the login form, HttpOnly and SameSite=Strict.

The cookie never holds the token. Its value is ``<expiry unix seconds>.<hex HMAC-SHA256>``, the
HMAC keyed with the digest of the token that logged in. Any dashboard process with the same
tokens accepts it (nothing is stored server side), and removing a token from the config ends
the sessions it opened. A wrong, forged or expired cookie is simply no credential.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from ingest.auth import Tokens

COOKIE = "pipeline_dashboard"
PATH = "/dashboard"


def _mac(key: bytes, expiry: int) -> str:
    return hmac.new(key, f"dashboard-session:{expiry}".encode(), hashlib.sha256).hexdigest()


def issue(key: bytes, hours: float, now: float | None = None) -> tuple[str, int]:
    """A cookie value for the token whose digest is ``key``, and its lifetime in seconds."""
    max_age = max(60, int(hours * 3600))
    expiry = int(now if now is not None else time.time()) + max_age
    return f"{expiry}.{_mac(key, expiry)}", max_age


def valid(tokens: Tokens, value: str, now: float | None = None) -> bool:
    """Constant time over every accepted token; the expiry is checked first (it is public)."""
    stamp, _, mac = value.partition(".")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12 and len(mac) == 64):
        return False
    expiry = int(stamp)
    if expiry <= (now if now is not None else time.time()):
        return False
    given = mac.encode()
    ok = False
    for key in tokens.digests:
        ok |= hmac.compare_digest(given, _mac(key, expiry).encode())
    return ok


def set_cookie_header(value: str, max_age: int, secure: bool) -> str:
    flags = f"Path={PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return f"{COOKIE}={value}; {flags}{'; Secure' if secure else ''}"


def clear_cookie_header(secure: bool) -> str:
    return set_cookie_header("", 0, secure)
