"""Realistic payment traffic: payments with in-order event chains, their expected end state,
and the signed requests that deliver them (shuffled, with redeliveries). Used by ``make run``,
the integration tests and the load generator; deterministic for a given seed."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pipeline.settings import ProviderSettings
from testing.webhooks import SUPPORTED, SampleEvent, redelivery, signed_request

PROVIDERS = ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard", "jwt")

#: valid in-order chains; the last status is the expected end state
SCENARIOS: tuple[tuple[str, ...], ...] = (
    ("new", "pending", "completed"),
    ("new", "pending", "confirmed", "completed"),
    ("new", "pending", "completed", "refunded"),
    ("new", "expired"),
    ("new", "pending", "underpaid"),
    ("new", "pending", "failed"),
    ("new", "canceled"),
    ("pending", "confirmed", "completed"),
    ("pending", "canceled"),
)
CURRENCIES = ("USDC", "BTC", "ETH", "USD")


@dataclass(frozen=True)
class Payment:
    provider: str
    external_id: str
    events: tuple[SampleEvent, ...]

    @property
    def expected_status(self) -> str:
        return self.events[-1].status


@dataclass(frozen=True)
class Request:
    provider: str
    body: bytes
    headers: dict[str, str]
    payment: Payment
    duplicate: bool


def payments(
    count: int, seed: int = 7, providers: tuple[str, ...] = PROVIDERS, start: datetime | None = None
) -> list[Payment]:
    rng = random.Random(seed)
    base = start or datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for i in range(count):
        provider = providers[i % len(providers)]
        chains = [c for c in SCENARIOS if set(c) <= set(SUPPORTED[provider])]
        chain = rng.choice(chains)
        ext = f"{provider[:3]}-{seed}-{i:06d}-{rng.randrange(16**6):06x}"
        amount = Decimal(rng.randrange(100, 500_000)) / 100
        currency = rng.choice(CURRENCIES)
        t0 = base + timedelta(seconds=rng.randrange(86_400))
        events = tuple(
            SampleEvent(
                provider,
                ext,
                status,
                amount,
                currency,
                t0 + timedelta(minutes=3 * k),
                f"evt-{ext}-{k}",
                f"order-{ext}",
            )
            for k, status in enumerate(chain)
        )
        out.append(Payment(provider, ext, events))
    return out


def requests(
    pays: list[Payment],
    providers: ProviderSettings,
    seed: int = 7,
    duplicate_share: float = 0.1,
    now: float | None = None,
    window: int | None = None,
) -> list[Request]:
    """Every event signed, plus a share of redeliveries, in a shuffled (out-of-order) order:
    shuffled whole, or inside consecutive ``window``s (a payment's events stay near)."""
    rng = random.Random(seed)
    out = []
    for p in pays:
        for ev in p.events:
            body, headers = signed_request(ev, providers, now)
            out.append(Request(p.provider, body, headers, p, False))
            if rng.random() < duplicate_share:
                body, headers = redelivery(ev, providers, now)
                out.append(Request(p.provider, body, headers, p, True))
    if window is None:
        rng.shuffle(out)
        return out
    for i in range(0, len(out), window):
        chunk = out[i : i + window]
        rng.shuffle(chunk)
        out[i : i + window] = chunk
    return out
