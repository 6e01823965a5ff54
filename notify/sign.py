"""Standard Webhooks signatures: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
one per secret (secret rotation), space-separated. Pure: the caller passes the time."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence


def secret_key(whsec: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret (padding optional)."""
    text = whsec.removeprefix("whsec_").rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs with every secret of one endpoint; the first is the current one."""

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets:
            raise ValueError("an endpoint needs at least one secret")
        self._keys = [secret_key(s) for s in secrets]

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        signed = f"{msg_id}.{timestamp}.".encode() + body
        return " ".join(
            "v1," + base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()).decode()
            for k in self._keys
        )

    def headers(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.signature(msg_id, timestamp, body),
            "content-type": "application/json",
            "user-agent": "checkout-pipeline-notify/1",
        }
