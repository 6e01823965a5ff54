"""Every provider, for real: a correctly signed webhook in the provider's shape reaches
Postgres; forged ones are refused; a rotated second secret is accepted."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx
import pytest

from pipeline.settings import ProviderSettings, Settings
from testing.webhooks import SampleEvent, signed_request
from tests.integration.waiting import eventually

PROVIDERS = ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard", "jwt")


def event(provider: str, status: str = "pending") -> SampleEvent:
    ext = f"e2e-{provider}-{uuid.uuid4().hex[:10]}"
    return SampleEvent(
        provider,
        ext,
        status,
        Decimal("42.10"),
        "USDC",
        datetime.now(UTC).replace(microsecond=0),
        f"evt-{ext}",
        f"order-{ext}",
    )


def rotated(providers: ProviderSettings, provider: str) -> ProviderSettings:
    """The same settings with the provider's secrets (or keys) in reverse order, so that the
    factory signs with the second, rotated one."""
    section = getattr(providers, provider)
    field = "keys" if provider == "jwt" else "secrets"
    flipped = section.model_copy(update={field: list(reversed(getattr(section, field)))})
    return providers.model_copy(update={provider: flipped})


async def status_of(pg: asyncpg.Pool, ev: SampleEvent) -> str | None:
    return await pg.fetchval(
        "SELECT status FROM transactions WHERE provider = $1 AND external_id = $2",
        ev.provider,
        ev.external_id,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_signed_webhook_reaches_postgres(
    provider: str, api: httpx.AsyncClient, pg: asyncpg.Pool, settings: Settings
) -> None:
    ev = event(provider)
    body, headers = signed_request(ev, settings.providers, time.time())
    r = await api.post(f"/webhooks/{provider}", content=body, headers=headers)
    assert r.status_code == 202, r.text
    await eventually(lambda: status_of(pg, ev), lambda s: s == "pending", what=f"{provider} row")
    got = (await api.get(f"/transactions/{provider}/{ev.external_id}")).json()
    assert got["status"] == "pending" and len(got["events"]) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_rotated_second_secret_is_accepted(
    provider: str, api: httpx.AsyncClient, pg: asyncpg.Pool, settings: Settings
) -> None:
    ev = event(provider, "confirmed" if provider != "coinbase" else "completed")
    body, headers = signed_request(ev, rotated(settings.providers, provider), time.time())
    r = await api.post(f"/webhooks/{provider}", content=body, headers=headers)
    assert r.status_code == 202, r.text
    await eventually(lambda: status_of(pg, ev), lambda s: s == ev.status, what=f"{provider} row")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_forgeries_are_refused(
    provider: str, api: httpx.AsyncClient, settings: Settings
) -> None:
    ev = event(provider)
    body, headers = signed_request(ev, settings.providers, time.time())
    tampered = body.replace(b"42.1", b"92.1")
    assert tampered != body
    assert (
        await api.post(f"/webhooks/{provider}", content=tampered, headers=headers)
    ).status_code == 401
    wrong = settings.providers.model_copy(
        update={provider: _wrong_secret(settings.providers, provider)}
    )
    body2, headers2 = signed_request(ev, wrong, time.time())
    assert (
        await api.post(f"/webhooks/{provider}", content=body2, headers=headers2)
    ).status_code == 401
    stale_body, stale_headers = signed_request(ev, settings.providers, time.time() - 3600)
    stale = await api.post(f"/webhooks/{provider}", content=stale_body, headers=stale_headers)
    if provider in ("standard", "jwt"):
        assert stale.status_code == 401 and "window" in stale.json()["detail"]
    bare = {k: v for k, v in headers.items() if k.lower() == "content-type"}
    missing = await api.post(f"/webhooks/{provider}", content=body, headers=bare)
    assert missing.status_code == 401 and "missing" in missing.json()["detail"]


def _wrong_secret(providers: ProviderSettings, provider: str) -> object:
    from pydantic import SecretStr

    section = getattr(providers, provider)
    if provider == "jwt":
        key = section.keys[0].model_copy(update={"secret": SecretStr("x" * 40)})
        return section.model_copy(update={"keys": [key]})
    wrong = "whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA==" if provider == "standard" else "wrong"
    return section.model_copy(update={"secrets": [SecretStr(wrong)]})
