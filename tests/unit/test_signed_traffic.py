"""The signed test traffic of ``testing/``: one builder for every provider ingest takes, and the
exact bytes the old ``pipeline/webhook_factory.py`` produced (decision 0060), so that tests,
bench and demo keep sending what they were written against."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.model import PROVIDERS, Status
from testing.providers import BUILDERS
from testing.webhooks import SUPPORTED, SampleEvent, expected_event_id, redelivery
from tests.explicit_settings import PROVIDERS as SECRETS

#: sha256(body + headers in order)[:16] of each provider's last status, first delivery and
#: retry, computed with the module this package replaced
GOLDEN = {
    ("coinbase", 1): "640caad1923de401",
    ("coinbase", 2): "c4ea495f22f7a45b",
    ("btcpay", 1): "7a244aa60c1f81aa",
    ("btcpay", 2): "4545680f967fc129",
    ("nowpayments", 1): "3969badfae9eeafa",
    ("nowpayments", 2): "3969badfae9eeafa",
    ("coinpayments", 1): "ed586ec5ac6d4bef",
    ("coinpayments", 2): "ed586ec5ac6d4bef",
    ("standard", 1): "6e9d06ab88dc1e40",
    ("standard", 2): "6e9d06ab88dc1e40",
    ("jwt", 1): "0dcda1156f669e2f",
    ("jwt", 2): "0dcda1156f669e2f",
}


def sample(provider: str) -> SampleEvent:
    when = datetime(2026, 9, 21, 12, 0, 5, tzinfo=UTC)
    status = SUPPORTED[provider][-1]
    return SampleEvent(
        provider, "4242", status, Decimal("12.5"), "USDC", when, "evt_7Jd2", "order-42"
    )


def test_every_provider_has_a_builder() -> None:
    assert sorted(BUILDERS) == sorted(PROVIDERS)
    assert all(set(SUPPORTED[p]) <= {s.value for s in Status} for p in PROVIDERS)


@pytest.mark.parametrize(("provider", "attempt"), sorted(GOLDEN))
def test_the_bytes_are_those_of_the_replaced_builder(provider: str, attempt: int) -> None:
    body, headers = redelivery(sample(provider), SECRETS, 1_790_000_000.0, attempt)
    digest = hashlib.sha256(body + json.dumps(list(headers.items())).encode()).hexdigest()
    assert digest[:16] == GOLDEN[provider, attempt]


def test_nowpayments_derives_its_event_id_and_the_others_name_theirs() -> None:
    assert expected_event_id(sample("nowpayments")) == (
        "nowpayments:4242:expired:1789992005000"  # 2026-09-21T12:00:05Z
    )
    assert expected_event_id(sample("btcpay")) == "btcpay:evt_7Jd2"
