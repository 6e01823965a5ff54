"""What the builders share: deterministic ids, times, amounts, JSON and HMACs."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: canonical statuses at which the buyer has paid something
FUNDED = frozenset({"pending", "confirmed", "completed", "underpaid", "overpaid", "refunded"})


def hex_hmac(secret: bytes, message: bytes, digest: str) -> str:
    return hmac.new(secret, message, digest).hexdigest()


def digest_id(*parts: object, n: int = 32) -> str:
    """A stable hex id of ``n`` characters derived from ``parts``."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:n]


def digest_uuid(*parts: object) -> str:
    return str(uuid.UUID(digest_id(*parts)))


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def epoch_ms(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(milliseconds=1)


def plain(amount: Decimal) -> str:
    return format(amount, "f")


def compact_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
