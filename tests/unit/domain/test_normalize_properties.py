"""Properties: any input makes a normalizer return events or raise NormalizeError, nothing else;
any factory event normalizes back to the same facts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from domain.errors import NormalizeError
from domain.model import Status
from domain.providers import normalize
from domain.records import PaymentEvent, RawWebhook
from pipeline.settings import (
    CoinPaymentsProvider,
    JwtKey,
    JwtProvider,
    ProviderSettings,
    SecretsProvider,
)
from testing.webhooks import SUPPORTED, SampleEvent, expected_event_id, signed_request

PROVIDERS = ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard", "jwt")
SETTINGS = ProviderSettings(
    coinbase=SecretsProvider(secrets=[SecretStr("cb")]),
    btcpay=SecretsProvider(secrets=[SecretStr("bp")]),
    nowpayments=SecretsProvider(secrets=[SecretStr("np")]),
    coinpayments=CoinPaymentsProvider(secrets=[SecretStr("cp")], merchant_id="m-1"),
    standard=SecretsProvider(secrets=[SecretStr("whsec_c2VjcmV0")]),
    jwt=JwtProvider(keys=[JwtKey(alg="HS256", secret=SecretStr("j" * 32))]),
)
QUICK = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = [
    # every field name the normalizers read, so that generated documents reach deep paths
    *("id", "type", "timestamp", "data", "event", "created_at", "code", "status", "context"),
    *("timeline", "payments", "value", "local", "amount", "currency", "pricing", "metadata"),
    *("order_id", "deliveryId", "originalDeliveryId", "orignalDeliveryId", "invoiceId"),
    *("overPaid", "partiallyPaid", "manuallyMarked", "afterExpiration", "payment"),
    *("paymentMethodId", "paymentMethod", "orderId", "payment_id", "payment_status"),
    *("updated_at", "actually_paid", "pay_currency", "price_amount", "price_currency"),
    *("pay_amount", "payment_id", "ipn_id", "ipn_type", "txn_id", "amount1", "currency1"),
    *("invoice", "item_number"),
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["charge:failed", "InvoiceSettled", "finished", "payment.pending", "pending", "100",
         "12.50", "1e400", "2026-09-21T12:00:00Z", "EXPIRED", "UNRESOLVED", "BTC-CHAIN"]
    )
)  # fmt: skip
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=25,
)


def outcome(provider: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    raw = RawWebhook("r", provider, 1_790_000_000_000, body, headers or {})
    try:
        events = normalize(raw)
    except NormalizeError:
        return
    assert all(isinstance(e, PaymentEvent) for e in events)


@pytest.mark.parametrize("provider", PROVIDERS)
@QUICK
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_normalize_error(provider: str, body: bytes) -> None:
    outcome(provider, body)


@pytest.mark.parametrize("provider", PROVIDERS)
@QUICK
@given(doc=JSONISH, webhook_id=st.text(max_size=20))
def test_arbitrary_json_raises_only_normalize_error(
    provider: str, doc: Any, webhook_id: str
) -> None:
    outcome(provider, json.dumps(doc).encode(), {"webhook-id": webhook_id})


@QUICK
@given(fields=st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=20), max_size=12))
def test_arbitrary_form_raises_only_normalize_error(fields: dict[str, str]) -> None:
    outcome("coinpayments", urlencode(fields).encode())


def sample(provider: str, status: str) -> SampleEvent:
    return SampleEvent(
        provider=provider,
        external_id="5077125051",
        status=status,
        amount=Decimal("12.50"),
        currency="BTC",
        occurred_at=datetime(2026, 9, 21, 12, 0, tzinfo=UTC),
        event_id="evt_1",
        order_id="order-42",
    )


def replace_one(body: bytes, provider: str, key_index: int, value: Any) -> bytes:
    """A real payload with one top-level field replaced by ``value``."""
    if provider == "coinpayments":
        pairs = parse_qsl(body.decode())
        key = pairs[key_index % len(pairs)][0]
        return urlencode([(k, str(value) if k == key else v) for k, v in pairs]).encode()
    doc = json.loads(body)
    key = list(doc)[key_index % len(doc)]
    doc[key] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize("provider", PROVIDERS)
@QUICK
@given(data=st.data(), key_index=st.integers(0, 50), value=JSONISH)
def test_real_payload_with_one_field_replaced_raises_only_normalize_error(
    provider: str, data: st.DataObject, key_index: int, value: Any
) -> None:
    status = data.draw(st.sampled_from(SUPPORTED[provider]))
    body, headers = signed_request(sample(provider, status), SETTINGS, 1_790_000_000.0)
    outcome(provider, replace_one(body, provider, key_index, value), headers)


IDS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40
)


@st.composite
def events(draw: st.DrawFn, provider: str) -> SampleEvent:
    digits = draw(st.integers(1, 15))
    places = draw(st.integers(0, min(digits, 8)))
    amount = Decimal(draw(st.integers(0, 10**digits - 1))).scaleb(-places)
    when = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(
        seconds=draw(st.integers(0, 20 * 365 * 86400))
    )
    external = str(draw(st.integers(1, 10**12))) if provider == "nowpayments" else draw(IDS)
    return SampleEvent(
        provider=provider,
        external_id=external,
        status=draw(st.sampled_from(SUPPORTED[provider])),
        amount=amount,
        currency=draw(st.sampled_from(["BTC", "USDC", "ETH", "USD"])),
        occurred_at=when,
        event_id=draw(IDS.filter(lambda s: s.isprintable() and s == s.strip())),
        order_id=draw(IDS),
    )


@pytest.mark.parametrize("provider", PROVIDERS)
@QUICK
@given(data=st.data())
def test_any_factory_event_normalizes_back(provider: str, data: st.DataObject) -> None:
    ev = data.draw(events(provider))
    body, headers = signed_request(ev, SETTINGS, 1_790_000_000.0)
    received = int(ev.occurred_at.timestamp() * 1000)
    raw = RawWebhook("r", provider, received, body, headers)
    [out] = normalize(raw)
    assert (out.external_id, out.status, out.order_id) == (
        ev.external_id,
        Status(ev.status),
        ev.order_id,
    )
    assert out.event_id == expected_event_id(ev)
    assert out.occurred_at == ev.occurred_at
    if out.amount is not None:
        assert out.amount == ev.amount
