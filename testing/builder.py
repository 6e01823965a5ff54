"""The shape of one provider's builder, and what signing needs from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.settings import ProviderSettings
from testing.sample import SampleEvent


def own_event_id(ev: SampleEvent) -> str:
    """The dedup id of a provider that names its events: ``provider:event id``."""
    return f"{ev.provider}:{ev.event_id}"


@dataclass(frozen=True)
class Signing:
    """What a signature needs: the configured secrets, the signing time (unix seconds) and,
    for ``jwt``, an optional ``(alg, private key PEM)`` instead of the first HS256 key."""

    providers: ProviderSettings
    when: float
    jwt_signer: tuple[str, str | bytes] | None = None


@dataclass(frozen=True)
class Builder:
    """One provider: the canonical statuses it can express, its body for a delivery attempt,
    its headers for a body, and the dedup id the normalizer derives."""

    statuses: tuple[str, ...]
    body: Callable[[SampleEvent, int, ProviderSettings], bytes]
    headers: Callable[[SampleEvent, bytes, Signing], dict[str, str]]
    event_id: Callable[[SampleEvent], str] = own_event_id


def first_secret(providers: ProviderSettings, provider: str) -> bytes:
    """The first non-empty configured secret of ``provider``."""
    group = getattr(providers, provider)
    secrets = [s.get_secret_value() for s in group.secrets if s.get_secret_value()]
    if not secrets:
        raise ValueError(f"{provider}: no secret configured")
    return str(secrets[0]).encode()
