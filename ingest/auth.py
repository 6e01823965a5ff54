"""The merchant API's credential: ``Authorization: Bearer <one of [api] tokens>``.

Every route that reads or writes payment data (``POST /checkouts``, ``GET /transactions/...``,
the dashboard's data) is guarded; webhooks are not (their provider signature is their
credential). Tokens are compared in constant time: the given token and each configured one
are hashed to the same length and every configured token is compared, with no early exit. No
token configured closes the merchant API (every call 401, with a detail that says why): it is
never open by omission.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

REALM = 'Bearer realm="merchant-api"'
NO_TOKENS = "merchant API closed: no [api] tokens configured on this server"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Tokens:
    """A set of accepted bearer tokens, kept only as SHA-256 digests."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.digests = tuple(_digest(t) for t in tokens if t)

    def __bool__(self) -> bool:
        return bool(self.digests)

    def __add__(self, other: Tokens) -> Tokens:
        joined = Tokens(())
        joined.digests = self.digests + other.digests
        return joined

    def match(self, given: str) -> bytes | None:
        """The digest of the configured token equal to ``given``, compared with all of them."""
        want = _digest(given)
        found: bytes | None = None
        for digest in self.digests:
            if hmac.compare_digest(want, digest):
                found = digest
        return found


def bearer(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` value; "" if there is none."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def refuse(detail: str, realm: str = REALM) -> NotAuthorizedException:
    return NotAuthorizedException(detail=detail, headers={"WWW-Authenticate": realm})


def api_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard of the merchant API: runs before the body is read or parsed."""
    tokens: Tokens = connection.app.state.api_tokens
    if not tokens:
        raise refuse(NO_TOKENS)
    given = bearer(connection.headers.get("authorization", ""))
    if not given:
        raise refuse("missing bearer token: send Authorization: Bearer <API token>")
    if tokens.match(given) is None:
        raise refuse("wrong API token")


def json_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """``application/json`` or nothing: a form or text body is what a cross-site page can send
    without a CORS preflight, so it never reaches the handler (415)."""
    media = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise HTTPException(
            status_code=415,
            detail=f"content type {media[:60]!r} not accepted; send application/json",
        )
