"""Small helpers that read untrusted JSON into typed values, raising NormalizeError only."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from domain.errors import NormalizeError

#: amounts below 10**18 with at most 18 decimal places: ClickHouse keeps them as
#: Decimal(38, 18) (under 10**20), and the daily volume sums need headroom; a finer amount
#: (``1E-400``) would read 0 there while Postgres kept it, and no coin has finer units
MAX_AMOUNT_DIGITS = 18
MAX_AMOUNT_PLACES = 18
#: NUL cannot be stored in Postgres text, a lone surrogate cannot be encoded as UTF-8: a
#: string holding either would stop the sink, so it is refused here, as data
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def load_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NormalizeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise NormalizeError("body is not a JSON object")
    return doc


def obj(doc: Any, key: str) -> dict[str, Any]:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, dict):
        raise NormalizeError(f"missing object {key!r}")
    return value


def text(doc: Any, key: str) -> str:
    value = doc.get(key) if isinstance(doc, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise NormalizeError(f"missing string {key!r}")
    if len(value) > 512:
        raise NormalizeError(f"field {key!r} is too long")
    if _UNSTORABLE.search(value):
        raise NormalizeError(f"field {key!r} holds NUL or a lone surrogate")
    return value


def opt_text(doc: Any, key: str) -> str | None:
    value = doc.get(key) if isinstance(doc, dict) else None
    return text(doc, key) if value not in (None, "") else None


def decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise NormalizeError(f"{what} is not a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise NormalizeError(f"{what} is not a number: {str(value)[:40]!r}") from None
    if not amount.is_finite() or amount < 0 or amount.adjusted() >= MAX_AMOUNT_DIGITS:
        raise NormalizeError(f"{what} is out of range")
    if amount and _places(amount) > MAX_AMOUNT_PLACES:
        raise NormalizeError(f"{what} has more than {MAX_AMOUNT_PLACES} decimal places")
    return amount


def _places(amount: Decimal) -> int:
    """Decimal places of a finite amount, trailing zeros aside; exact (no rounding)."""
    _, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):  # NaN or infinite: refused before this
        raise NormalizeError("amount is not finite")
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros))


def timestamp(value: Any, what: str) -> datetime:
    """An RFC 3339 string or unix seconds, as an aware UTC datetime."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), tz=UTC)
        if isinstance(value, str) and value:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise NormalizeError(f"{what} is not a timestamp")
