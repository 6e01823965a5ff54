"""BTCPay Server (Greenfield): ``BTCPay-Sig: sha256=<hex HMAC-SHA256 of the raw body>``."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.verify.base import Headers, SignatureError, any_matches, hmac_hex, require_header

HEADER = "btcpay-sig"
PREFIX = "sha256="


class BtcPayVerifier:
    kept_headers: tuple[str, ...] = ()

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = [s.encode() for s in secrets]

    def verify(self, body: bytes, headers: Headers) -> None:
        given = require_header(headers, HEADER).strip()
        if not given.lower().startswith(PREFIX):
            raise SignatureError("malformed signature header")
        digest = given[len(PREFIX) :]
        if not any_matches(digest, (hmac_hex(s, body) for s in self._secrets)):
            raise SignatureError("bad signature")
