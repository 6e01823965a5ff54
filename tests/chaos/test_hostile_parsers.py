"""Hostile input through every parser and verifier, in this process, with Hypothesis.

Each one may refuse only with its own error type (the one ingest maps to 400/401/415, or that
streams turns into a dead letter), never with anything else. What a normalizer does accept is
followed all the way to the rows the sinks would write, which must be storable: no NUL, no
lone surrogate, amounts that fit ClickHouse's Decimal(38, 18).
"""

from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from domain import step
from domain.checkouts import parse_checkout
from domain.errors import NormalizeError
from domain.providers import normalize
from domain.records import KIND_CHECKOUT, SNAPSHOT, TRANSITION, Entry, RawWebhook, encode
from ingest.intake import Unreadable, WrongMediaType, check_content_type, check_readable
from ingest.verify import nowpayments
from ingest.verify.base import SignatureError, Verifier
from ingest.verify.registry import build_verifiers
from pipeline.settings import ProviderSettings, load_settings
from sinks import clickhouse, postgres
from streams.flow import delivery_fields
from tests.chaos.hostile import (
    CONTENT_TYPES,
    PROVIDERS,
    SIGNATURE_HEADERS,
    base_document,
    header_values,
    hostile_document,
    malformed_bodies,
)
from tests.chaos.probes import TALLY, sign, sized


@functools.cache
def provider_settings() -> ProviderSettings:
    """The configured secrets, read when a test first needs them, not when pytest imports
    this module (a config error then fails the tests that need it, not the collection)."""
    return load_settings().providers


@functools.cache
def verifiers() -> dict[str, Verifier]:
    return build_verifiers(provider_settings())


@functools.cache
def document(provider: str) -> Any:
    return base_document(provider, provider_settings(), "hostile-1")


KEPT = {"standard": ("webhook-id", "webhook-timestamp")}
CH_DECIMAL_LIMIT = Decimal(10) ** 20  # Decimal(38, 18)


def bodies(provider: str) -> st.SearchStrategy[bytes]:
    return st.one_of(malformed_bodies, hostile_document(provider, document(provider)))


def signed(provider: str, body: bytes) -> dict[str, str] | None:
    """Correct signature headers, or None where none can exist (NOWPayments signs parsed JSON)."""
    try:
        return sign(provider, body, provider_settings(), record=False)
    except SignatureError:
        return None


def raw_webhook(provider: str, body: bytes, headers: dict[str, str]) -> RawWebhook:
    kept = {h: headers[h] for h in KEPT.get(provider, ()) if h in headers}
    return RawWebhook(uuid.uuid4().hex, provider, int(time.time() * 1000), body, kept)


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from leaves(v)
    else:
        yield value


def assert_storable(rows: Any, where: str) -> None:
    for value in leaves(rows):
        if isinstance(value, str):
            assert "\x00" not in value, f"{where}: NUL in {value[:60]!r}"
            value.encode("utf-8")  # a lone surrogate raises here
        if isinstance(value, Decimal):
            assert value.is_finite() and abs(value) < CH_DECIMAL_LIMIT, f"{where}: {value}"


def through_the_pipeline(raw: RawWebhook) -> None:
    """normalize -> dedup/state machine -> the sinks' rows, as the services chain it."""
    for record in normalize(raw):
        outcome = step.process(Entry(), record, 7 * 24 * 3600 * 1000)
        assert outcome.snapshot is not None
        snap = SNAPSHOT.decode(encode(outcome.snapshot.snapshot()))
        assert_storable(postgres.tx_rows([snap]), "postgres transactions")
        for eff in outcome.effects:
            t = replace(eff, **delivery_fields(record, int(time.time() * 1000)))
            t = TRANSITION.decode(encode(t))
            assert_storable(postgres.history_rows([t]), "postgres transaction_events")
            assert_storable(clickhouse.event_row(t), "clickhouse")


@pytest.mark.parametrize("provider", PROVIDERS)
@sized(ci=150, full=1000)
@given(data=st.data())
def test_authentic_hostile_bodies_end_as_refusal_or_storable_rows(
    provider: str, data: st.DataObject
) -> None:
    TALLY.case()
    body = data.draw(bodies(provider), label="body")
    headers = signed(provider, body)
    verifier = verifiers()[provider]
    if headers is None:
        with pytest.raises(SignatureError):
            verifier.verify(body, {"x-nowpayments-sig": "0" * 128})
        return
    try:
        verifier.verify(body, headers)  # authentic: passes, whatever the body holds...
    except SignatureError as exc:  # ...but a CoinPayments form must name the merchant too,
        # and a NOWPayments body over its bounds is refused before its signature is checked
        expected = {"coinpayments": "merchant mismatch", "nowpayments": nowpayments.TOO_BIG}
        assert exc.reason == expected.get(provider), exc.reason
        return
    try:
        check_readable(provider, body)
    except Unreadable as exc:
        assert str(exc)  # ingest answers 400 and dead-letters it
        return
    try:
        through_the_pipeline(raw_webhook(provider, body, headers))
    except NormalizeError as exc:
        assert str(exc)  # streams dead-letters it


@pytest.mark.parametrize("provider", PROVIDERS)
@sized(ci=150, full=1000)
@given(
    body=st.one_of(malformed_bodies, st.binary(max_size=300)),
    content_type=st.sampled_from(CONTENT_TYPES),
    headers=st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), header_values, max_size=4),
)
def test_forged_requests_fail_only_with_signature_errors(
    provider: str, body: bytes, content_type: str | None, headers: dict[str, str]
) -> None:
    TALLY.case()
    try:
        check_content_type(provider, content_type)
    except WrongMediaType as exc:
        assert str(exc)
    with pytest.raises(SignatureError) as refused:
        verifiers()[provider].verify(body, headers)
    assert refused.value.reason and refused.value.reason.isprintable()
    try:
        check_readable(provider, body)
    except Unreadable as exc:
        assert str(exc).isprintable()


def _b64(doc: Any) -> str:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


jwt_headers = st.one_of(
    st.fixed_dictionaries(
        {"alg": st.sampled_from(["none", "None", "NONE", "HS256", "RS256", "ES256", "HS512", ""])}
    ),
    st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3),
    st.binary(max_size=40),
)
jwt_claims = st.one_of(
    st.fixed_dictionaries(
        {
            "iat": st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.none()),
            "request_body_sha256": st.one_of(st.text(max_size=70), st.integers()),
        }
    ),
    st.binary(max_size=40),
)


@sized(ci=300, full=2000)
@given(
    header=jwt_headers,
    claims=jwt_claims,
    signature=st.one_of(st.just(""), st.binary(max_size=80).map(_b64)),
    spacing=st.sampled_from(["Bearer ", "bearer ", "Bearer  ", "Basic ", ""]),
)
def test_made_up_jwts_fail_only_with_signature_errors(
    header: Any, claims: Any, signature: str, spacing: str
) -> None:
    TALLY.case()
    token = f"{_b64(header)}.{_b64(claims)}.{signature}"
    with pytest.raises(SignatureError):
        verifiers()["jwt"].verify(b"{}", {"authorization": spacing + token})


checkout_fields = st.fixed_dictionaries(
    {},
    optional={
        "provider": st.sampled_from([*PROVIDERS, "x"]),
        "external_id": st.one_of(st.text(max_size=30), st.integers(), st.none()),
        "order_id": st.text(max_size=30),
        "amount": st.one_of(
            st.sampled_from(["1", "1e400", "9" * 40, "-1", "NaN", "0.1", "1" * 19]),
            st.floats(),
            st.text(max_size=10),
        ),
        "currency": st.one_of(st.sampled_from(["USD", "btc", "\u202eUSD", "x" * 40]), st.text()),
    },
)


@sized(ci=200, full=1500)
@given(body=st.one_of(malformed_bodies, checkout_fields.map(lambda d: json.dumps(d).encode())))
def test_checkout_records_refuse_only_as_data(body: bytes) -> None:
    TALLY.case()
    raw = RawWebhook(uuid.uuid4().hex, "coinbase", int(time.time() * 1000), body, {}, KIND_CHECKOUT)
    try:
        checkout = parse_checkout(raw)
    except NormalizeError:
        return
    outcome = step.process(Entry(), checkout, 1000)
    assert outcome.snapshot is not None
    snap = SNAPSHOT.decode(encode(outcome.snapshot.snapshot()))
    assert_storable(postgres.checkout_rows([snap]), "postgres checkouts")
    assert_storable(postgres.tx_rows([snap]), "postgres transactions")
