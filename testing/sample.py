"""The one input of every builder: a provider event about one payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class SampleEvent:
    """One provider event about one payment. ``event_id`` is the provider's own event id
    (BTCPay's first delivery id, CoinPayments' ipn_id, ...); NOWPayments has none."""

    provider: str
    external_id: str
    status: str  # canonical status
    amount: Decimal
    currency: str
    occurred_at: datetime
    event_id: str
    order_id: str
