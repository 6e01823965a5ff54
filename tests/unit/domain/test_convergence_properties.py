"""Convergence, as properties: for every provider, whatever order a payment's webhooks arrive in
and however often they are redelivered, the final state is the one in-order, duplicate-free
delivery gives.

Each payment goes the whole way a real one goes: a chain of canonical statuses, the provider's
real signed request for each (``testing.webhooks.signed_request``), the raw record ingest writes
(lower-case headers, only the kept ones), the provider's normalizer, then ``machine.apply``.
A duplicate here is the same Kafka record again (a consumer redelivery or a replay).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from domain.checkouts import parse_checkout
from domain.machine import apply, checkout_order, order_key, register_checkout
from domain.model import PROVIDERS, Status
from domain.providers import normalize
from domain.records import KIND_CHECKOUT, Checkout, PaymentEvent, RawWebhook, TxState
from pipeline.settings import (
    CoinPaymentsProvider,
    JwtKey,
    JwtProvider,
    ProviderSettings,
    SecretsProvider,
)
from testing.traffic import CURRENCIES, SCENARIOS
from testing.webhooks import SUPPORTED, SampleEvent, redelivery, signed_request
from tests.unit.domain.origins import converged

NOW = 1_790_000_000.0  # signing time of the timed schemes (standard, jwt): fixed, deterministic
T0 = datetime(2026, 9, 1, tzinfo=UTC)
KEPT = ("webhook-id", "webhook-timestamp", "content-type")
SETTINGS = ProviderSettings(
    coinbase=SecretsProvider(secrets=[SecretStr("cb")]),
    btcpay=SecretsProvider(secrets=[SecretStr("bp")]),
    nowpayments=SecretsProvider(secrets=[SecretStr("np")]),
    coinpayments=CoinPaymentsProvider(secrets=[SecretStr("cp")], merchant_id="m-1"),
    standard=SecretsProvider(secrets=[SecretStr("whsec_c2VjcmV0")]),
    jwt=JwtProvider(keys=[JwtKey(alg="HS256", secret=SecretStr("j" * 32))]),
)
PROPERTY = settings(max_examples=200, deadline=None)
Record = RawWebhook | Checkout | PaymentEvent


def chains(provider: str) -> list[tuple[str, ...]]:
    return [c for c in SCENARIOS if set(c) <= set(SUPPORTED[provider])]


def as_ingest(
    provider: str, request: tuple[bytes, dict[str, str]], raw_id: str, received_ms: int
) -> RawWebhook:
    """The raw record as ingest writes it: lower-case header names, only the kept ones."""
    body, headers = request
    lower = {k.lower(): v for k, v in headers.items()}
    return RawWebhook(
        raw_id, provider, received_ms, body, {k: lower[k] for k in KEPT if k in lower}
    )


@dataclass(frozen=True)
class Payment:
    provider: str
    chain: tuple[str, ...]
    samples: tuple[SampleEvent, ...]
    raws: tuple[RawWebhook, ...]  # in chain order


@st.composite
def payments(draw: st.DrawFn, providers: tuple[str, ...] = PROVIDERS) -> Payment:
    provider = draw(st.sampled_from(providers))
    chain = draw(st.sampled_from(chains(provider)))
    external_id = str(draw(st.integers(1, 10**12)))
    amount = Decimal(draw(st.integers(1, 10**9))).scaleb(-draw(st.integers(0, 8)))
    currency = draw(st.sampled_from(CURRENCIES))
    # whole seconds: most providers stamp seconds; a gap of 0 leaves the order to the status rank
    t = T0 + timedelta(seconds=draw(st.integers(0, 10**7)))
    samples, raws = [], []
    for k, status in enumerate(chain):
        t += timedelta(seconds=draw(st.integers(0, 600)) if k else 0)
        ev = SampleEvent(
            provider, external_id, status, amount, currency, t, f"evt-{external_id}-{k}", "o-1"
        )
        received = int(t.timestamp() * 1000) + draw(st.integers(0, 30_000))
        samples.append(ev)
        raws.append(as_ingest(provider, signed_request(ev, SETTINGS, NOW), f"raw-{k}", received))
    return Payment(provider, chain, tuple(samples), tuple(raws))


def deliver(records: list[Record] | tuple[Record, ...]) -> TxState:
    """What the streams agents do with each record of one payment, in arrival order: a raw
    webhook is normalized then applied, a checkout registered, an event applied."""
    state: TxState | None = None
    for r in records:
        if isinstance(r, Checkout):
            state = register_checkout(state, r)
            continue
        for e in normalize(r) if isinstance(r, RawWebhook) else [r]:
            state, _ = apply(state, e)
    assert state is not None
    return state


def arrivals(data: st.DataObject, records: tuple[Record, ...], max_copies: int = 2) -> list[Record]:
    """A random permutation of the records plus a random multiset of duplicates."""
    n = len(records)
    extra = data.draw(st.lists(st.integers(0, n - 1), max_size=max_copies * n), label="copies")
    order = data.draw(st.permutations(list(range(n)) + extra), label="arrival order")
    return [records[i] for i in order]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_has_a_scenario(provider: str) -> None:
    assert chains(provider)


@PROPERTY
@given(data=st.data())
def test_any_arrival_order_with_duplicates_converges(data: st.DataObject) -> None:
    payment = data.draw(payments(), label="payment")
    expected = deliver(payment.raws)
    assert expected.status == Status(payment.chain[-1])
    assert all(a.applied for a in expected.events)
    shuffled = arrivals(data, payment.raws)
    assert converged(deliver(shuffled)) == converged(expected)


def checkout_for(payment: Payment, relation: str, currency: str, created_ms: int) -> Checkout:
    """The checkout ``POST /checkouts`` would write for this payment, read back by streams."""
    paid = payment.samples[0].amount
    amount = {"equal": paid, "lower": paid * 2, "higher": paid / 2}[relation]
    body = {
        "provider": payment.provider,
        "external_id": payment.samples[0].external_id,
        "order_id": "o-1",
        "amount": str(amount),
        "currency": currency,
    }
    raw = RawWebhook(
        "raw-checkout", payment.provider, created_ms, json.dumps(body).encode(), {}, KIND_CHECKOUT
    )
    return parse_checkout(raw)


@PROPERTY
@given(data=st.data())
def test_a_checkout_registered_anywhere_in_the_arrival_order_converges(
    data: st.DataObject,
) -> None:
    payment = data.draw(payments(), label="payment")
    relation = data.draw(st.sampled_from(["equal", "lower", "higher"]), label="paid vs expected")
    same = payment.samples[0].currency
    currency = data.draw(st.sampled_from([same, same.lower(), "EUR"]), label="checkout currency")
    created_ms = payment.raws[0].received_at_ms + data.draw(st.integers(-60_000, 3_600_000))
    c = checkout_for(payment, relation, currency, created_ms)

    expected = deliver([c, *payment.raws])
    if relation == "equal" or currency == "EUR":
        assert expected.status == Status(payment.chain[-1])
    shuffled = arrivals(data, (c, *payment.raws))
    assert c in shuffled
    assert converged(deliver(shuffled)) == converged(expected)


@PROPERTY
@given(data=st.data())
def test_conflicting_checkout_registrations_converge_in_any_order(data: st.DataObject) -> None:
    """A merchant may register one payment twice with different amounts; the two records
    travel through different raw partitions, so either may reach the workers first."""
    payment = data.draw(payments(), label="payment")
    start = payment.raws[0].received_at_ms
    checkouts = [
        checkout_for(
            payment,
            data.draw(st.sampled_from(["equal", "lower", "higher"])),
            data.draw(st.sampled_from([payment.samples[0].currency, "EUR"])),
            start + data.draw(st.integers(-2, 2)),  # same millisecond too: ordered by content
        )
        for _ in range(data.draw(st.integers(2, 4), label="registrations"))
    ]
    expected = deliver([*checkouts, *payment.raws])
    assert expected.checkout == min(checkouts, key=checkout_order)
    shuffled = arrivals(data, (*checkouts, *payment.raws))
    assert converged(deliver(shuffled)) == converged(expected)


# ---- provider redeliveries: a new delivery, a new raw record, a later receipt ------------

TIMESTAMPED = tuple(p for p in PROVIDERS if p != "coinpayments")


def business(state: TxState) -> dict[str, Any]:
    """The state without receipt metadata (``received_at``, ``raw_id``, ``updated_at``), which
    is that of whichever copy of an event was processed first."""
    doc = converged(state)
    doc.pop("updated_at")
    for e in doc["events"]:
        e.pop("received_at")
        e.pop("raw_id")
    return doc


@PROPERTY
@given(data=st.data())
def test_provider_redeliveries_converge_on_everything_but_receipt_metadata(
    data: st.DataObject,
) -> None:
    payment = data.draw(payments(TIMESTAMPED), label="payment")
    expected = deliver(payment.raws)
    retries: list[RawWebhook] = []
    for k in data.draw(st.lists(st.integers(0, len(payment.samples) - 1), max_size=4)):
        ev, first = payment.samples[k], payment.raws[k]
        attempt = 2 + len(retries)
        request = redelivery(ev, SETTINGS, NOW + 60 * attempt, attempt)
        later = first.received_at_ms + 60_000 * attempt
        retries.append(as_ingest(payment.provider, request, f"raw-retry-{attempt}", later))
    shuffled = arrivals(data, (*payment.raws, *retries), max_copies=1)
    assert business(deliver(shuffled)) == business(expected)


# ---- arbitrary events, no provider ------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> list[PaymentEvent]:
    ids = draw(
        st.lists(st.text("abcde", min_size=1, max_size=3), min_size=1, max_size=8, unique=True)
    )
    out = []
    for event_id in ids:
        amount = draw(st.none() | st.sampled_from(["0", "9.99", "10", "10.00", "10.01", "1E+3"]))
        received = draw(st.none() | st.integers(0, 10**6))
        # few distinct instants, so that equal timestamps are common
        seconds, micros = draw(st.integers(0, 3)), draw(st.sampled_from([0, 0, 1]))
        out.append(
            PaymentEvent(
                event_id=f"standard:{event_id}",
                provider="standard",
                external_id="pay_1",
                status=draw(st.sampled_from(list(Status))),
                occurred_at=T0 + timedelta(seconds=seconds, microseconds=micros),
                provider_status="x",
                amount=None if amount is None else Decimal(amount),
                currency=None if amount is None else draw(st.sampled_from(["USDC", "usdc", "BTC"])),
                order_id=draw(st.none() | st.sampled_from(["o-1", "o-2"])),
                received_at=None if received is None else T0 + timedelta(milliseconds=received),
                raw_id=f"raw-{event_id}",
            )
        )
    return out


@PROPERTY
@given(data=st.data(), events=histories())
def test_arbitrary_events_converge_to_the_fold_in_sorted_order(
    data: st.DataObject, events: list[PaymentEvent]
) -> None:
    c = data.draw(
        st.none()
        | st.sampled_from(["10", "10.00", "1000"]).map(
            lambda a: Checkout("standard", "pay_1", "o-9", Decimal(a), "USDC", T0)
        ),
        label="checkout",
    )
    first: tuple[Record, ...] = (c,) if c else ()
    expected = deliver([*first, *sorted(events, key=order_key)])
    assert expected.version == len(first) + len(events)
    assert converged(deliver(arrivals(data, (*first, *events)))) == converged(expected)


# ---- a known gap --------------------------------------------------------------------------


def test_coinpayments_ipns_received_out_of_order_converge() -> None:
    def ipn(status: str, ipn_id: str, received_s: int) -> RawWebhook:
        ev = SampleEvent("coinpayments", "tx-1", status, Decimal("10"), "BTC", T0, ipn_id, "o-1")
        ms = int(T0.timestamp() * 1000) + 1000 * received_s
        return as_ingest("coinpayments", signed_request(ev, SETTINGS, NOW), f"raw-{ipn_id}", ms)

    in_order = deliver([ipn("pending", "a", 1), ipn("completed", "b", 2), ipn("refunded", "c", 3)])
    assert in_order.status is Status.REFUNDED
    # the completion IPN is retried and reaches ingest after the refund IPN
    retried = deliver([ipn("pending", "a", 1), ipn("refunded", "c", 2), ipn("completed", "b", 3)])
    assert retried.status is Status.REFUNDED  # is completed: "impossible pending -> refunded"
