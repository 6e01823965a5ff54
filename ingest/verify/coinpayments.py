"""CoinPayments legacy IPN: form-encoded body, ``HMAC`` = hex HMAC-SHA512 of the raw body.

The IPN secret signs; the ``merchant`` field must also be the configured merchant id, so that
a notification for another merchant account (signed with a shared secret) is refused.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from urllib.parse import parse_qs

from ingest.verify.base import Headers, SignatureError, any_matches, hmac_hex, require_header

HEADER = "hmac"
FORM = "application/x-www-form-urlencoded"


class CoinPaymentsVerifier:
    kept_headers: tuple[str, ...] = ()

    def __init__(self, secrets: Sequence[str], merchant_id: str) -> None:
        self._secrets = [s.encode() for s in secrets]
        self._merchant = merchant_id.encode()

    def verify(self, body: bytes, headers: Headers) -> None:
        ctype = headers.get("content-type")
        if ctype is not None and ctype.split(";")[0].strip().lower() != FORM:
            raise SignatureError(f"content type must be {FORM}")
        given = require_header(headers, HEADER)
        expected = (hmac_hex(s, body, "sha512") for s in self._secrets)
        if not any_matches(given, expected):
            raise SignatureError("bad signature")
        if not hmac.compare_digest(_merchant(body).encode(), self._merchant):
            raise SignatureError("merchant mismatch")


def _merchant(body: bytes) -> str:
    """The single ``merchant`` form field ("" when absent, repeated or unreadable)."""
    try:
        text = body.decode()
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except ValueError:  # UnicodeDecodeError included
        return ""
    values = fields.get("merchant", [])
    return values[0] if len(values) == 1 else ""
