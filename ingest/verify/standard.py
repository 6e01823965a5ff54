"""Standard Webhooks (the open spec Svix and others implement).

``webhook-signature`` holds space-separated ``v1,<base64 HMAC-SHA256>`` entries over
``"{webhook-id}.{webhook-timestamp}.{body}"``; any entry matching any secret passes, so both
sides can rotate. Secrets are written ``whsec_<base64>`` and the decoded bytes are the key.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Sequence

from ingest.verify.base import (
    Clock,
    Headers,
    SignatureError,
    check_fresh,
    require_header,
    system_clock,
)

ID = "webhook-id"
TIMESTAMP = "webhook-timestamp"
SIGNATURE = "webhook-signature"
SECRET_PREFIX = "whsec_"
_TIMESTAMP = re.compile(r"\d{1,12}")


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError (without the secret) if invalid."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("secret is not whsec_<base64>") from None
    if not key:
        raise ValueError("secret is empty")
    return key


class StandardWebhookVerifier:
    kept_headers: tuple[str, ...] = (ID, TIMESTAMP)

    def __init__(self, secrets: Sequence[str], clock: Clock = system_clock) -> None:
        self._keys = [decode_secret(s) for s in secrets]
        self._clock = clock

    def verify(self, body: bytes, headers: Headers) -> None:
        msg_id = require_header(headers, ID)
        ts = require_header(headers, TIMESTAMP)
        header = require_header(headers, SIGNATURE)
        if not _TIMESTAMP.fullmatch(ts):
            raise SignatureError("malformed webhook-timestamp header")
        check_fresh(float(ts), self._clock())
        entries = (e.partition(",") for e in header.split(" "))  # the spec: space-separated
        given = [sig.encode() for version, _, sig in entries if version == "v1"]
        if not given:
            raise SignatureError("malformed signature header")
        content = f"{msg_id}.{ts}.".encode() + body
        ok = False
        for key in self._keys:
            expected = base64.b64encode(hmac.digest(key, content, "sha256"))
            for sig in given:
                ok |= hmac.compare_digest(sig, expected)
        if not ok:
            raise SignatureError("bad signature")
