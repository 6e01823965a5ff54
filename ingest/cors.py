"""CORS for the browser-facing parts (``ingest.cors_origins``), refusals in the JSON contract.

Litestar answers a preflight from an origin that is not listed (or asking for a method or
header that is not allowed) with a ``text/plain`` 400 and no ``Access-Control-Allow-Origin``.
The refusal stays, without that header, so the browser still blocks the request; the
``before_send`` hook only turns the body into JSON with a ``detail``, like every other error.
"""

from __future__ import annotations

from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import Message, Scope

REFUSED = b'{"detail":"CORS preflight refused: origin, method or headers not allowed"}'
_FLAG = "cors_refused"


def cors_config(origins: list[str]) -> CORSConfig | None:
    """No origins, no CORS: a cross-origin browser request then never sees an allow header."""
    return CORSConfig(allow_origins=list(origins)) if origins else None


async def json_preflight_refusal(message: Message, scope: Scope) -> None:
    """``before_send`` hook: the body of a refused preflight becomes JSON with ``detail``."""
    if scope["type"] != ScopeType.HTTP or scope["method"] != "OPTIONS":
        return
    if message["type"] == "http.response.start" and message["status"] == 400:
        headers = MutableScopeHeaders.from_message(message)
        if (headers.get("content-type") or "").startswith("text/plain"):
            headers["content-type"] = "application/json"
            headers["content-length"] = str(len(REFUSED))
            scope.setdefault("state", {})[_FLAG] = True
    elif message["type"] == "http.response.body" and scope.get("state", {}).get(_FLAG):
        message["body"] = REFUSED
