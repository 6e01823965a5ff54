"""NOWPayments signs a JavaScript re-serialization: one IPN may carry its numbers as 1234,
1234.0 or 1.234e3 under one valid signature. They must be one payment and one event."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import NormalizeError
from domain.providers.nowpayments import normalize
from domain.records import RawWebhook


def ipn(payment_id: str, updated_at: str, amount: str = "12.5") -> RawWebhook:
    body = (
        f'{{"payment_id":{payment_id},"payment_status":"finished","price_amount":{amount},'
        f'"price_currency":"usd","updated_at":{updated_at}}}'
    ).encode()
    return RawWebhook("r", "nowpayments", 0, body, {})


@pytest.mark.parametrize(
    ("payment_id", "updated_at", "amount"),
    [
        ("1234", "1700000000000", "12.5"),
        ("1234.0", "1700000000000.0", "12.50"),
        ("1.234e3", "1.7e12", "1.25e1"),
        ("12340e-1", "17000000000000E-1", "125E-1"),
        ('"1234"', '"1700000000000"', "12.5"),
    ],
)
def test_number_forms_give_one_payment_and_one_event(
    payment_id: str, updated_at: str, amount: str
) -> None:
    (ev,) = normalize(ipn(payment_id, updated_at, amount))
    assert ev.external_id == "1234"
    assert ev.event_id == "nowpayments:1234:finished:1700000000000"
    assert ev.amount == Decimal("12.5") and "E" not in str(ev.amount)


def test_fractions_stay_distinct_and_huge_exponents_are_refused() -> None:
    (ev,) = normalize(ipn("1234.5", "1700000000000"))
    assert ev.external_id == "1234.5"
    with pytest.raises(NormalizeError):
        normalize(ipn("1e999999", "1700000000000"))
    with pytest.raises(NormalizeError):
        normalize(ipn("1234", "1e999999"))
