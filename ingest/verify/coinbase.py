"""Coinbase Commerce: ``X-CC-Webhook-Signature`` = hex HMAC-SHA256 of the raw body."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.verify.base import Headers, SignatureError, any_matches, hmac_hex, require_header

HEADER = "x-cc-webhook-signature"


class CoinbaseVerifier:
    kept_headers: tuple[str, ...] = ()

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = [s.encode() for s in secrets]

    def verify(self, body: bytes, headers: Headers) -> None:
        given = require_header(headers, HEADER)
        if not any_matches(given, (hmac_hex(s, body) for s in self._secrets)):
            raise SignatureError("bad signature")
