"""The one event model every provider payload is normalized into."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


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


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """One provider event about one payment, in canonical terms.

    ``event_id`` is the deduplication id, already scoped by provider. ``occurred_at`` is the
    provider's own timestamp: events are ordered by it, never by arrival.
    """

    event_id: str
    provider: str
    external_id: str
    status: Status
    occurred_at: datetime
    provider_status: str
    amount: Decimal | None = None
    currency: str | None = None
    order_id: str | None = None
    received_at: datetime | None = None
    raw_id: str = ""
    #: False when the provider sends no time of its own (CoinPayments IPN): ``occurred_at``
    #: is then the receipt time, shown but never used to order, and the status rank decides
    provider_time: bool = True
    #: the provider's human reference of the payment, where it has one (Coinbase: the code)
    reference: str | None = None

    @property
    def tx_key(self) -> str:
        return transaction_key(self.provider, self.external_id)

    def with_receipt(self, raw_id: str, received_at: datetime) -> PaymentEvent:
        return replace(self, raw_id=raw_id, received_at=received_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "provider": self.provider,
            "external_id": self.external_id,
            "status": self.status.value,
            "occurred_at": iso(self.occurred_at),
            "provider_status": self.provider_status,
            "amount": None if self.amount is None else str(self.amount),
            "currency": self.currency,
            "order_id": self.order_id,
            "received_at": None if self.received_at is None else iso(self.received_at),
            "raw_id": self.raw_id,
            "provider_time": self.provider_time,
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PaymentEvent:
        return cls(
            event_id=d["event_id"],
            provider=d["provider"],
            external_id=d["external_id"],
            status=Status(d["status"]),
            occurred_at=parse_iso(d["occurred_at"]),
            provider_status=d["provider_status"],
            amount=None if d.get("amount") is None else Decimal(d["amount"]),
            currency=d.get("currency"),
            order_id=d.get("order_id"),
            received_at=None if d.get("received_at") is None else parse_iso(d["received_at"]),
            raw_id=d.get("raw_id", ""),
            provider_time=d.get("provider_time", True),
            reference=d.get("reference"),
        )


@dataclass(frozen=True, slots=True)
class Checkout:
    """An expected payment registered through ``POST /checkouts``."""

    provider: str
    external_id: str
    order_id: str
    amount: Decimal
    currency: str
    created_at: datetime

    @property
    def tx_key(self) -> str:
        return transaction_key(self.provider, self.external_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "external_id": self.external_id,
            "order_id": self.order_id,
            "amount": str(self.amount),
            "currency": self.currency,
            "created_at": iso(self.created_at),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Checkout:
        return cls(
            provider=d["provider"],
            external_id=d["external_id"],
            order_id=d["order_id"],
            amount=Decimal(d["amount"]),
            currency=d["currency"],
            created_at=parse_iso(d["created_at"]),
        )


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
