"""Realistic, correctly signed webhook requests for every provider.

Each provider's payload has that provider's real shape and field names; the canonical status
is mapped back to the provider's own event type or status. Header names are lower case, as
ingest sees them. Deterministic: the same SampleEvent (and ``now``) always gives the same bytes.
"""

from __future__ import annotations

import time

from pipeline.settings import ProviderSettings
from testing.builder import Signing
from testing.providers import BUILDERS
from testing.sample import SampleEvent

__all__ = ["SUPPORTED", "SampleEvent", "expected_event_id", "redelivery", "signed_request"]

#: provider -> the canonical statuses its requests can carry
SUPPORTED: dict[str, tuple[str, ...]] = {name: b.statuses for name, b in BUILDERS.items()}


def signed_request(
    ev: SampleEvent,
    providers: ProviderSettings,
    now: float | None = None,
    *,
    jwt_signer: tuple[str, str | bytes] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` of ``ev`` as its provider sends it, signed with the first configured
    secret (for ``jwt``: the first HS256 key, or ``jwt_signer=(alg, private key PEM)``).
    ``now`` (unix seconds, default the current time) stamps the timed schemes."""
    return _request(ev, providers, now, 1, jwt_signer)


def redelivery(
    ev: SampleEvent,
    providers: ProviderSettings,
    now: float | None = None,
    attempt: int = 2,
    *,
    jwt_signer: tuple[str, str | bytes] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The provider's retry of the same event: BTCPay sends a new ``deliveryId`` with
    ``originalDeliveryId`` and ``isRedelivery``, Coinbase a higher ``attempt_number``, the timed
    schemes a fresh signature. The dedup id is always that of the first delivery."""
    return _request(ev, providers, now, attempt, jwt_signer)


def expected_event_id(ev: SampleEvent) -> str:
    """The dedup id the normalizer derives from this event's requests."""
    return BUILDERS[ev.provider].event_id(ev)


def _request(
    ev: SampleEvent,
    providers: ProviderSettings,
    now: float | None,
    attempt: int,
    jwt_signer: tuple[str, str | bytes] | None,
) -> tuple[bytes, dict[str, str]]:
    if ev.status not in SUPPORTED.get(ev.provider, ()):
        raise ValueError(f"{ev.provider} has no event for status {ev.status!r}")
    if ev.amount < 0 or not ev.amount.is_finite():
        raise ValueError("amount must be a finite, non-negative decimal")
    builder = BUILDERS[ev.provider]
    body = builder.body(ev, attempt, providers)
    when = time.time() if now is None else now
    return body, builder.headers(ev, body, Signing(providers, when, jwt_signer))
