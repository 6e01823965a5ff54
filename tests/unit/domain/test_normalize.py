"""Normalizers: factory requests come back as the same facts; provider quirks map as documented."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from domain.errors import NormalizeError
from domain.model import Status
from domain.providers import NORMALIZERS, normalize
from domain.records import PaymentEvent, RawWebhook
from pipeline.settings import (
    CoinPaymentsProvider,
    JwtKey,
    JwtProvider,
    ProviderSettings,
    SecretsProvider,
)
from testing.webhooks import (
    SUPPORTED,
    SampleEvent,
    expected_event_id,
    redelivery,
    signed_request,
)

NOW = 1_790_000_000.0
OCCURRED = datetime(2026, 9, 21, 11, 58, 7, tzinfo=UTC)
RECEIVED_MS = 1_790_000_000_123
PROVIDERS = ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard", "jwt")
KEPT = {"standard": ("webhook-id", "webhook-timestamp")}
SETTINGS = ProviderSettings(
    coinbase=SecretsProvider(secrets=[SecretStr("cb")]),
    btcpay=SecretsProvider(secrets=[SecretStr("bp")]),
    nowpayments=SecretsProvider(secrets=[SecretStr("np")]),
    coinpayments=CoinPaymentsProvider(secrets=[SecretStr("cp")], merchant_id="m-1"),
    standard=SecretsProvider(secrets=[SecretStr("whsec_c2VjcmV0")]),
    jwt=JwtProvider(keys=[JwtKey(alg="HS256", secret=SecretStr("j" * 32))]),
)
# (provider, canonical status) whose payload carries no amount
NO_AMOUNT = {("btcpay", s) for s in SUPPORTED["btcpay"] if s != "pending"}


def sample(provider: str, status: str, **changes: Any) -> SampleEvent:
    fields: dict[str, Any] = {
        "provider": provider,
        "external_id": "5077125051",
        "status": status,
        "amount": Decimal("0.00012500"),
        "currency": "BTC",
        "occurred_at": OCCURRED,
        "event_id": "evt_01J8ZQ",
        "order_id": "order-42",
    }
    return SampleEvent(**{**fields, **changes})


def raw(provider: str, body: bytes, headers: dict[str, str] | None = None) -> RawWebhook:
    kept = {k: v for k, v in (headers or {}).items() if k in KEPT.get(provider, ())}
    return RawWebhook("raw-1", provider, RECEIVED_MS, body, kept)


def one(provider: str, body: bytes, headers: dict[str, str] | None = None) -> PaymentEvent:
    events = normalize(raw(provider, body, headers))
    assert len(events) == 1
    return events[0]


def from_factory(ev: SampleEvent) -> PaymentEvent:
    body, headers = signed_request(ev, SETTINGS, NOW)
    return one(ev.provider, body, headers)


def test_every_provider_is_registered() -> None:
    assert sorted(NORMALIZERS) == sorted(PROVIDERS)


@pytest.mark.parametrize(("provider", "status"), [(p, s) for p in PROVIDERS for s in SUPPORTED[p]])
def test_factory_request_normalizes_back_to_the_same_facts(provider: str, status: str) -> None:
    ev = sample(provider, status)
    out = from_factory(ev)
    assert out.provider == provider
    assert out.external_id == ev.external_id
    assert out.status == Status(status)
    assert out.event_id == expected_event_id(ev)
    assert out.order_id == ev.order_id
    assert out.raw_id == "raw-1"
    if provider == "coinpayments":  # the IPN has no time of its own
        assert out.occurred_at == datetime.fromtimestamp(RECEIVED_MS / 1000, UTC)
    else:
        assert out.occurred_at == ev.occurred_at
    if (provider, status) in NO_AMOUNT:
        assert out.amount is None
    else:
        assert out.amount == ev.amount
        assert out.currency == ev.currency


@pytest.mark.parametrize("provider", PROVIDERS)
def test_redelivery_has_the_same_dedup_id(provider: str) -> None:
    ev = sample(provider, SUPPORTED[provider][0])
    first = from_factory(ev)
    body, headers = redelivery(ev, SETTINGS, NOW + 60)
    again = one(provider, body, headers)
    assert again.event_id == first.event_id == expected_event_id(ev)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unsupported_status_is_refused_by_the_factory(provider: str) -> None:
    missing = [s for s in Status if s.value not in SUPPORTED[provider]]
    for status in missing:
        with pytest.raises(ValueError, match="no event for status"):
            signed_request(sample(provider, status.value), SETTINGS, NOW)


# ---- BTCPay -----------------------------------------------------------------------------------


def btcpay(etype: str, **fields: Any) -> bytes:
    doc = {
        "deliveryId": "dlv-2",
        "webhookId": "wh-1",
        "originalDeliveryId": "dlv-1",
        "isRedelivery": True,
        "type": etype,
        "timestamp": 1790000000,
        "storeId": "store-1",
        "invoiceId": "inv-1",
        **fields,
    }
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("etype", "flags", "status"),
    [
        ("InvoiceCreated", {}, Status.NEW),
        ("InvoiceReceivedPayment", {"afterExpiration": True}, Status.PENDING),
        ("InvoicePaymentSettled", {}, Status.PENDING),
        ("InvoiceProcessing", {"overPaid": False}, Status.CONFIRMED),
        ("InvoiceProcessing", {"overPaid": True}, Status.OVERPAID),
        ("InvoiceSettled", {"overPaid": False, "manuallyMarked": True}, Status.COMPLETED),
        ("InvoiceSettled", {"overPaid": True}, Status.OVERPAID),
        ("InvoiceExpired", {"partiallyPaid": False}, Status.EXPIRED),
        ("InvoiceExpired", {"partiallyPaid": True}, Status.UNDERPAID),
        ("InvoiceInvalid", {"manuallyMarked": True}, Status.FAILED),
    ],
)
def test_btcpay_status_mapping(etype: str, flags: dict[str, bool], status: Status) -> None:
    out = one("btcpay", btcpay(etype, **flags))
    assert out.status == status
    assert out.provider_status.split("+")[0] == etype
    assert out.occurred_at == datetime.fromtimestamp(1790000000, UTC)


def test_btcpay_dedups_on_the_original_delivery() -> None:
    assert one("btcpay", btcpay("InvoiceSettled")).event_id == "btcpay:dlv-1"
    first = btcpay("InvoiceSettled", originalDeliveryId=None, isRedelivery=False)
    assert one("btcpay", first).event_id == "btcpay:dlv-2"
    legacy = btcpay("InvoiceSettled", originalDeliveryId=None, orignalDeliveryId="dlv-0")
    assert one("btcpay", legacy).event_id == "btcpay:dlv-0"


def test_btcpay_payment_amount_and_order_id() -> None:
    payment = {"id": "tx-0", "value": "0.00051", "fee": "0.0", "status": "Settled"}
    for method in ({"paymentMethodId": "BTC-CHAIN"}, {"paymentMethod": "BTC"}):
        body = btcpay(
            "InvoiceReceivedPayment", payment=payment, metadata={"orderId": "o-9"}, **method
        )
        out = one("btcpay", body)
        assert (out.amount, out.currency, out.order_id) == (Decimal("0.00051"), "BTC", "o-9")


@pytest.mark.parametrize(
    "body",
    [btcpay("InvoiceRefunded"), btcpay("InvoiceSettled", invoiceId=None), b"[]", b"{"],
)
def test_btcpay_refuses_what_it_cannot_read(body: bytes) -> None:
    with pytest.raises(NormalizeError):
        normalize(raw("btcpay", body))


# ---- NOWPayments ------------------------------------------------------------------------------

NP_IPN = (
    '{"payment_id":5261148849,"parent_payment_id":null,"invoice_id":6417549628,'
    '"payment_status":"finished","pay_address":"TDbqd96NNmXmNQCCbdohbvDnDZHcZy1GGJ",'
    '"payin_extra_id":null,"price_amount":5,"price_currency":"usd","pay_amount":69.242455,'
    '"actually_paid":69.25,"actually_paid_at_fiat":0,"pay_currency":"trx","order_id":"1",'
    '"order_description":"Pay for services","purchase_id":"5931000544",'
    '"updated_at":1698697946468,"outcome_amount":4.959058,"outcome_currency":"usdttrc20",'
    '"payment_extra_ids":null}'
)


def np(**changes: Any) -> bytes:
    doc = json.loads(NP_IPN)
    doc.update(changes)
    return json.dumps(doc).encode()


def test_nowpayments_real_ipn() -> None:
    out = one("nowpayments", NP_IPN.encode())
    assert out.event_id == "nowpayments:5261148849:finished:1698697946468"
    assert out.external_id == "5261148849"
    assert out.status == Status.COMPLETED
    assert out.occurred_at == datetime(2023, 10, 30, 20, 32, 26, 468000, tzinfo=UTC)
    assert (out.amount, out.currency, out.order_id) == (Decimal("69.25"), "TRX", "1")


@pytest.mark.parametrize(
    ("pstatus", "status"),
    [
        ("waiting", Status.NEW),
        ("confirming", Status.PENDING),
        ("confirmed", Status.CONFIRMED),
        ("sending", Status.CONFIRMED),
        ("partially_paid", Status.UNDERPAID),
        ("finished", Status.COMPLETED),
        ("failed", Status.FAILED),
        ("refunded", Status.REFUNDED),
        ("expired", Status.EXPIRED),
    ],
)
def test_nowpayments_status_mapping(pstatus: str, status: Status) -> None:
    assert one("nowpayments", np(payment_status=pstatus)).status == status


def test_nowpayments_amounts_are_exact_decimals() -> None:
    body = b'{"payment_id":"1","payment_status":"confirming","actually_paid":0.1,'
    body += b'"pay_currency":"btc","updated_at":1}'
    assert one("nowpayments", body).amount == Decimal("0.1")  # not 0.1000000000000000055...


def test_nowpayments_unpaid_uses_the_price() -> None:
    out = one("nowpayments", np(payment_status="waiting", actually_paid=0))
    assert (out.amount, out.currency) == (Decimal("5"), "USD")


@pytest.mark.parametrize(
    ("updated_at", "expected"),
    [
        ("1698697946468", datetime(2023, 10, 30, 20, 32, 26, 468000, tzinfo=UTC)),
        ("2021-04-12T14:23:06.244Z", datetime(2021, 4, 12, 14, 23, 6, 244000, tzinfo=UTC)),
    ],
)
def test_nowpayments_updated_at_as_string(updated_at: str, expected: datetime) -> None:
    out = one("nowpayments", np(updated_at=updated_at))
    assert out.occurred_at == expected
    assert out.event_id.endswith(f":finished:{updated_at}")


@pytest.mark.parametrize(
    "body",
    [
        np(payment_status="paid"),
        np(updated_at=None),
        np(updated_at=-5),
        np(updated_at=True),
        np(payment_id=None),
        np(actually_paid="lots"),
        b'{"payment_id":1,"payment_status":"finished","updated_at":1,"actually_paid":NaN}',
        b'{"payment_id":1,"payment_status":"finished","updated_at":1e400}',
        b"[1]",
    ],
)
def test_nowpayments_refuses_what_it_cannot_read(body: bytes) -> None:
    with pytest.raises(NormalizeError):
        normalize(raw("nowpayments", body))


# ---- CoinPayments -----------------------------------------------------------------------------


def cp(**changes: str) -> bytes:
    fields = {
        "ipn_version": "1.0",
        "ipn_type": "api",
        "ipn_mode": "hmac",
        "ipn_id": "ipn-1",
        "merchant": "m-1",
        "status": "100",
        "txn_id": "CPFA1",
        "amount1": "12.50",
        "currency1": "usd",
        "item_number": "item-7",
        **changes,
    }
    return urlencode({k: v for k, v in fields.items() if v != "-"}).encode()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("-3", Status.FAILED),
        ("-2", Status.REFUNDED),
        ("-1", Status.CANCELED),
        ("0", Status.PENDING),
        ("1", Status.CONFIRMED),
        ("2", Status.COMPLETED),
        ("3", Status.PENDING),
        ("5", Status.PENDING),
        ("99", Status.PENDING),
        ("100", Status.COMPLETED),
        ("101", Status.COMPLETED),
    ],
)
def test_coinpayments_status_mapping(code: str, status: Status) -> None:
    out = one("coinpayments", cp(status=code))
    assert out.status == status
    assert out.provider_status == code


def test_coinpayments_fields() -> None:
    out = one("coinpayments", cp())
    assert out.event_id == "coinpayments:ipn-1"
    assert (out.external_id, out.amount, out.currency) == ("CPFA1", Decimal("12.50"), "USD")
    assert out.order_id == "item-7"
    assert one("coinpayments", cp(invoice="inv-3")).order_id == "inv-3"
    assert out.occurred_at == datetime.fromtimestamp(RECEIVED_MS / 1000, UTC)


@pytest.mark.parametrize(
    "body",
    [
        cp() + b"&status=2",
        cp(status="complete"),
        cp(status="1e3"),
        cp(ipn_type="deposit"),
        cp(ipn_id="-"),
        cp(amount1="-1"),
        b"status=100&&txn_id=x",
        b"\xff\xfe",
        b"",
    ],
)
def test_coinpayments_refuses_what_it_cannot_read(body: bytes) -> None:
    with pytest.raises(NormalizeError):
        normalize(raw("coinpayments", body))


# ---- Standard Webhooks and JWT (the generic event) --------------------------------------------


def generic(**data: Any) -> dict[str, Any]:
    fields = {
        "payment_id": "pay_1",
        "status": "completed",
        "amount": "12.50",
        "currency": "USDC",
        "order_id": "o-1",
        **data,
    }
    return {
        "id": "evt_1",
        "type": f"payment.{fields['status']}",
        "timestamp": "2026-09-21T11:58:07Z",
        "data": {k: v for k, v in fields.items() if v is not None},
    }


def test_standard_dedups_on_the_webhook_id_header() -> None:
    body = json.dumps(generic()).encode()
    out = one("standard", body, {"webhook-id": "msg_9", "webhook-timestamp": "1"})
    assert out.event_id == "standard:msg_9"
    assert (out.external_id, out.status, out.amount) == (
        "pay_1",
        Status.COMPLETED,
        Decimal("12.50"),
    )
    assert out.occurred_at == OCCURRED


def test_standard_without_webhook_id_is_refused() -> None:
    with pytest.raises(NormalizeError):
        normalize(raw("standard", json.dumps(generic()).encode()))


def test_jwt_dedups_on_the_body_id() -> None:
    assert one("jwt", json.dumps(generic()).encode()).event_id == "jwt:evt_1"


def test_generic_event_without_amount() -> None:
    out = one("jwt", json.dumps(generic(amount=None, currency=None)).encode())
    assert (out.amount, out.currency) == (None, None)


@pytest.mark.parametrize(
    "doc",
    [
        generic(status="paid"),
        generic(status="COMPLETED"),
        {**generic(), "type": "payment.pending"},
        generic(amount=12.5),
        generic(amount="1e3"),
        generic(amount="-1.00"),
        generic(amount="12.50", currency=None),
        generic(payment_id=None),
        {**generic(), "timestamp": "yesterday"},
        {**generic(), "data": "x"},
    ],
)
@pytest.mark.parametrize("provider", ["standard", "jwt"])
def test_generic_event_refuses_what_is_not_the_contract(provider: str, doc: dict[str, Any]) -> None:
    with pytest.raises(NormalizeError):
        normalize(raw(provider, json.dumps(doc).encode(), {"webhook-id": "msg_1"}))


def test_unknown_provider_is_refused() -> None:
    with pytest.raises(NormalizeError):
        normalize(raw("paypal", b"{}"))


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x\udfff"])
def test_strings_postgres_cannot_store_are_refused(value: str) -> None:
    from domain.providers._json import text

    with pytest.raises(NormalizeError, match="NUL or a lone surrogate"):
        text({"k": value}, "k")


@pytest.mark.parametrize(
    "amount", ["1000000000000000000", "1e18", "123456789012345678901234567890"]
)
def test_amounts_clickhouse_cannot_hold_are_refused(amount: str) -> None:
    from domain.providers._json import decimal

    with pytest.raises(NormalizeError, match="out of range"):
        decimal(amount, "amount")
    assert decimal("999999999999999999.999", "amount") < 10**18


@pytest.mark.parametrize(
    "amount", ["1E-400", "0.0000000000000000011", 1e-19, "1." + "0" * 250 + "1"]
)
def test_amounts_finer_than_clickhouse_keeps_are_refused(amount: str | float) -> None:
    """ClickHouse keeps 18 decimal places: a finer amount would read 0 there (a rebuild
    found Postgres's 1E-400 against ClickHouse's 0)."""
    from domain.providers._json import decimal

    with pytest.raises(NormalizeError, match="more than 18 decimal places"):
        decimal(amount, "amount")


@pytest.mark.parametrize(
    ("amount", "kept"),
    [("0.000000000000000001", "1E-18"), ("1.500000000000000000000", "1.5"), ("0E-400", "0")],
)
def test_amounts_within_18_places_are_kept(amount: str, kept: str) -> None:
    from domain.providers._json import decimal

    assert decimal(amount, "amount") == Decimal(kept)
