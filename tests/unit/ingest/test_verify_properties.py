"""Properties: no modified body and no modified signature ever verifies, for any provider."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from ingest.verify.base import SignatureError, Verifier
from ingest.verify.nowpayments import canonical_forms
from ingest.verify.registry import SIGNATURE_HEADERS, build_verifiers
from pipeline.settings import (
    CoinPaymentsProvider,
    JwtKey,
    JwtProvider,
    ProviderSettings,
    SecretsProvider,
)
from testing.webhooks import SUPPORTED, SampleEvent, signed_request

NOW = 1_790_000_000.0
PROVIDERS = ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard", "jwt")
SETTINGS = ProviderSettings(
    coinbase=SecretsProvider(secrets=[SecretStr("cb-1"), SecretStr("cb-2")]),
    btcpay=SecretsProvider(secrets=[SecretStr("bp-1")]),
    nowpayments=SecretsProvider(secrets=[SecretStr("np-1")]),
    coinpayments=CoinPaymentsProvider(secrets=[SecretStr("cp-1")], merchant_id="m-1"),
    standard=SecretsProvider(secrets=[SecretStr("whsec_" + base64.b64encode(b"k" * 24).decode())]),
    jwt=JwtProvider(keys=[JwtKey(alg="HS256", secret=SecretStr("j" * 32))]),
)
VERIFIERS: dict[str, Verifier] = build_verifiers(SETTINGS, clock=lambda: NOW)
SIG_HEADER = SIGNATURE_HEADERS
QUICK = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def request(provider: str) -> tuple[bytes, dict[str, str]]:
    ev = SampleEvent(
        provider=provider,
        external_id="5077125051",
        status=SUPPORTED[provider][0],
        amount=Decimal("12.5"),
        currency="BTC",
        occurred_at=datetime(2026, 9, 21, 12, 0, tzinfo=UTC),
        event_id="evt_1",
        order_id="order-42",
    )
    return signed_request(ev, SETTINGS, NOW)


REQUESTS = {p: request(p) for p in PROVIDERS}


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with bytes replaced, inserted or deleted somewhere."""
    out = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(out)))
        kind = draw(st.sampled_from(["replace", "insert", "delete"]))
        if kind == "insert" or not out or at == len(out):
            out[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "replace":
            out[at] = draw(st.integers(0, 255))
        else:
            del out[at]
    return bytes(out)


def verifies(provider: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        VERIFIERS[provider].verify(body, headers)
    except SignatureError:
        return False
    return True


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_unmodified_request_verifies(provider: str) -> None:
    assert verifies(provider, *REQUESTS[provider])


@pytest.mark.parametrize("provider", PROVIDERS)
@QUICK
@given(data=st.data())
def test_no_modified_body_verifies(provider: str, data: st.DataObject) -> None:
    body, headers = REQUESTS[provider]
    changed = data.draw(mutated(body))
    assume(changed != body)
    if provider == "nowpayments":  # signed over the parsed document: only a new document counts
        with contextlib.suppress(SignatureError):  # not JSON at all: must be refused
            assume(canonical_forms(changed) != canonical_forms(body))
    assert not verifies(provider, changed, headers)


def signature_part(provider: str, value: str) -> tuple[str, str]:
    """(fixed prefix, the signature proper) of a signature header."""
    for prefix in ("sha256=", "v1,", "Bearer "):
        if value.startswith(prefix):
            return prefix, value[len(prefix) :]
    return "", value


@pytest.mark.parametrize("provider", PROVIDERS)
@QUICK
@given(data=st.data())
def test_no_modified_signature_verifies(provider: str, data: st.DataObject) -> None:
    body, headers = REQUESTS[provider]
    name = SIG_HEADER[provider]
    prefix, sig = signature_part(provider, headers[name])
    changed = data.draw(mutated(sig.encode())).decode("latin-1")
    # hex digests compare case-insensitively and ignore surrounding blanks: same value
    assume(changed.strip().lower() != sig.strip().lower())
    assume(changed.strip() != sig)
    # Standard Webhooks: any listed signature passes, so the original must not still be listed
    assume(headers[name] not in (prefix + changed).split(" "))
    assert not verifies(provider, body, {**headers, name: prefix + changed})


@pytest.mark.parametrize("provider", PROVIDERS)
@QUICK
@given(value=st.text(max_size=200))
def test_arbitrary_signature_header_never_verifies_or_crashes(provider: str, value: str) -> None:
    body, headers = REQUESTS[provider]
    assert not verifies(provider, body, {**headers, SIG_HEADER[provider]: value})


@QUICK
@given(skew=st.integers(min_value=-300, max_value=300), msg_id=st.text(min_size=1, max_size=40))
def test_standard_other_id_or_time_never_verifies(skew: int, msg_id: str) -> None:
    body, headers = REQUESTS["standard"]
    ts = int(NOW) + skew
    assume(str(ts) != headers["webhook-timestamp"] or msg_id != headers["webhook-id"])
    changed = {**headers, "webhook-id": msg_id, "webhook-timestamp": str(ts)}
    assert not verifies("standard", body, changed)
