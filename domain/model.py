"""Canonical statuses, providers, the partition key and the times of every record (the records
themselves are in ``domain.records``)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    PENDING = "pending"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    UNDERPAID = "underpaid"
    OVERPAID = "overpaid"
    EXPIRED = "expired"
    FAILED = "failed"
    REFUNDED = "refunded"
    CANCELED = "canceled"


PROVIDERS = ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard", "jwt")


def transaction_key(provider: str, external_id: str) -> str:
    """The partition key: all of one payment's events meet in one partition."""
    return f"{provider}:{external_id}"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
