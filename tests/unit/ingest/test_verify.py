"""Signature verifiers: factory requests pass; tampering, wrong secrets, stale times fail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jwt
import pytest
import standardwebhooks
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from ingest.verify import nowpayments
from ingest.verify.base import SignatureError, Verifier
from ingest.verify.jwt import JwtKeySpec, JwtVerifier
from ingest.verify.nowpayments import NowPaymentsVerifier, canonical_forms
from ingest.verify.registry import SIGNATURE_HEADERS, build_verifiers
from ingest.verify.standard import StandardWebhookVerifier
from pipeline.settings import (
    CoinPaymentsProvider,
    ConfigError,
    JwtKey,
    JwtProvider,
    ProviderSettings,
    SecretsProvider,
)
from testing.webhooks import SUPPORTED, SampleEvent, signed_request

NOW = 1_790_000_000.0
PROVIDERS = ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard", "jwt")
SIG_HEADER = SIGNATURE_HEADERS
TIMED = ("standard", "jwt")

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def pem_private(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem_public(key: PrivateKey) -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


def whsec(raw: bytes) -> str:
    return "whsec_" + base64.b64encode(raw).decode()


def settings(tag: str, merchant: str = "merchant-1") -> ProviderSettings:
    """Provider settings whose every secret is derived from ``tag``."""

    def secrets(name: str) -> SecretsProvider:
        return SecretsProvider(secrets=[SecretStr(f"{tag}-{name}-secret")])

    return ProviderSettings(
        coinbase=secrets("coinbase"),
        btcpay=secrets("btcpay"),
        nowpayments=secrets("nowpayments"),
        coinpayments=CoinPaymentsProvider(
            secrets=[SecretStr(f"{tag}-coinpayments-secret")], merchant_id=merchant
        ),
        standard=SecretsProvider(secrets=[SecretStr(whsec(f"{tag}-standard-key".encode()))]),
        jwt=JwtProvider(
            keys=[JwtKey(alg="HS256", secret=SecretStr(f"{tag}-jwt-hs256-" + "x" * 32))]
        ),
    )


def rotated(old: ProviderSettings, new: ProviderSettings) -> ProviderSettings:
    """Every provider configured with ``old`` first and ``new`` second."""
    merged: dict[str, Any] = {}
    for name in ("coinbase", "btcpay", "nowpayments", "standard"):
        merged[name] = SecretsProvider(
            secrets=getattr(old, name).secrets + getattr(new, name).secrets
        )
    merged["coinpayments"] = CoinPaymentsProvider(
        secrets=old.coinpayments.secrets + new.coinpayments.secrets,
        merchant_id=old.coinpayments.merchant_id,
    )
    merged["jwt"] = JwtProvider(keys=old.jwt.keys + new.jwt.keys)
    return ProviderSettings(**merged)


OURS = settings("ours")
THEIRS = settings("theirs")


def verifiers(providers: ProviderSettings = OURS) -> dict[str, Verifier]:
    return build_verifiers(providers, clock=lambda: NOW)


def sample(provider: str, status: str | None = None) -> SampleEvent:
    return SampleEvent(
        provider=provider,
        external_id="5077125051",
        status=status or SUPPORTED[provider][-1],
        amount=Decimal("12.50"),
        currency="USDC",
        occurred_at=datetime(2026, 9, 21, 12, 0, 5, tzinfo=UTC),
        event_id="evt_7Jd2",
        order_id="order-42",
    )


def refused(verifier: Verifier, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(SignatureError) as info:
        verifier.verify(body, headers)
    reason = info.value.reason
    for secret in ("ours-", "theirs-", "whsec_", "BEGIN"):
        assert secret not in reason
    return reason


# ---- every provider ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status_index", [0, -1])
def test_factory_request_verifies(provider: str, status_index: int) -> None:
    ev = sample(provider, SUPPORTED[provider][status_index])
    body, headers = signed_request(ev, OURS, NOW)
    verifiers()[provider].verify(body, headers)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tampered_body_is_refused(provider: str) -> None:
    body, headers = signed_request(sample(provider), OURS, NOW)
    tampered = body.replace(b"order-42", b"order-43")
    assert tampered != body
    reason = refused(verifiers()[provider], tampered, headers)
    assert reason in ("bad signature", "request_body_sha256 does not match the body")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_secret_is_refused(provider: str) -> None:
    body, headers = signed_request(sample(provider), THEIRS, NOW)
    assert refused(verifiers()[provider], body, headers) == "bad signature"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_signature_header_is_refused(provider: str) -> None:
    body, headers = signed_request(sample(provider), OURS, NOW)
    del headers[SIG_HEADER[provider]]
    assert refused(verifiers()[provider], body, headers) == f"missing {SIG_HEADER[provider]} header"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_empty_signature_header_is_refused(provider: str) -> None:
    body, headers = signed_request(sample(provider), OURS, NOW)
    headers[SIG_HEADER[provider]] = ""
    assert refused(verifiers()[provider], body, headers).startswith("missing ")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_second_secret_is_accepted_during_rotation(provider: str) -> None:
    both = verifiers(rotated(OURS, THEIRS))
    for signer in (OURS, THEIRS):
        body, headers = signed_request(sample(provider), signer, NOW)
        both[provider].verify(body, headers)


@pytest.mark.parametrize("provider", TIMED)
@pytest.mark.parametrize("skew", [-301, 301, -3600, 86400])
def test_stale_or_future_timestamp_is_refused(provider: str, skew: int) -> None:
    body, headers = signed_request(sample(provider), OURS, NOW + skew)
    reason = refused(verifiers()[provider], body, headers)
    assert reason == "timestamp outside the 5-minute window"


@pytest.mark.parametrize("provider", TIMED)
@pytest.mark.parametrize("skew", [-299, 0, 299])
def test_timestamp_within_the_window_is_accepted(provider: str, skew: int) -> None:
    body, headers = signed_request(sample(provider), OURS, NOW + skew)
    verifiers()[provider].verify(body, headers)


# ---- registry ---------------------------------------------------------------------------------


def test_registry_builds_all_six_providers() -> None:
    built = verifiers()
    assert sorted(built) == sorted(PROVIDERS)
    assert built["standard"].kept_headers == ("webhook-id", "webhook-timestamp")
    assert all(built[p].kept_headers == () for p in PROVIDERS if p != "standard")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unconfigured_provider_refuses_everything(provider: str) -> None:
    body, headers = signed_request(sample(provider), OURS, NOW)
    assert refused(verifiers(ProviderSettings())[provider], body, headers) == (
        "provider not configured"
    )


def test_empty_secrets_do_not_count_as_configured() -> None:
    empty = ProviderSettings(btcpay=SecretsProvider(secrets=[SecretStr("")]))
    body = b"{}"
    headers = {"btcpay-sig": "sha256=" + hmac.new(b"", body, hashlib.sha256).hexdigest()}
    assert refused(verifiers(empty)["btcpay"], body, headers) == "provider not configured"


def test_coinpayments_without_merchant_id_is_not_configured() -> None:
    body, headers = signed_request(sample("coinpayments"), OURS, NOW)
    no_merchant = settings("ours", merchant="")
    assert refused(verifiers(no_merchant)["coinpayments"], body, headers) == (
        "provider not configured"
    )


def test_bad_standard_secret_is_a_config_error_without_the_secret() -> None:
    bad = ProviderSettings(standard=SecretsProvider(secrets=[SecretStr("whsec_not*base64!")]))
    with pytest.raises(ConfigError) as info:
        verifiers(bad)
    assert "not*base64" not in str(info.value)


def test_jwt_key_of_the_wrong_type_is_a_config_error() -> None:
    wrong = JwtProvider(keys=[JwtKey(alg="ES256", public_key_pem=pem_public(RSA_KEY))])
    with pytest.raises(ConfigError, match=r"providers\.jwt"):
        verifiers(ProviderSettings(jwt=wrong))


# ---- BTCPay -----------------------------------------------------------------------------------


def test_btcpay_signature_needs_the_sha256_prefix() -> None:
    body, headers = signed_request(sample("btcpay"), OURS, NOW)
    headers["btcpay-sig"] = headers["btcpay-sig"].removeprefix("sha256=")
    assert refused(verifiers()["btcpay"], body, headers) == "malformed signature header"


# ---- NOWPayments ------------------------------------------------------------------------------


def np_sign(body: bytes, secret: str = "ours-nowpayments-secret") -> dict[str, str]:
    doc = json.loads(body)
    signed = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return {"x-nowpayments-sig": hmac.new(secret.encode(), signed, hashlib.sha512).hexdigest()}


def test_nowpayments_signs_the_sorted_document_not_the_bytes() -> None:
    body, headers = signed_request(sample("nowpayments"), OURS, NOW)
    pretty = json.dumps(dict(reversed(json.loads(body).items())), indent=2).encode()
    verifiers()["nowpayments"].verify(pretty, headers)


def test_nowpayments_python_reference_with_non_ascii_and_nested_objects() -> None:
    body = '{"z":"héllo ✓","fee":{"serviceFee":0.25,"currency":"btc"},"actually_paid":5e-05}'
    verifiers()["nowpayments"].verify(body.encode(), np_sign(body.encode()))


# Signed by Node: JSON.stringify(sortDeep(JSON.parse(body))) under the key "k" (raw UTF-8,
# JavaScript numbers, array-index keys first, UTF-16 key order, lone surrogates escaped).
NODE_BODY = (
    r'{"z":1,"a":{"y":[3,2.50,{"b":true,"a":null}],"x":"h\u00e9llo \u2014 \u2713 \ud800 \u001f'
    r' \u2028 \"q\" \\ / \t"},"big":1.5e21,"neg":-0.000123,"10":1,"9":2,"\ud83d\ude00":1,'
    r'"\uffff":2,"n":123456789012345678901,"e":[],"o":{},"m":-0.0}'
)
NODE_SIG = (
    "4d937c35fe46c2606e29cd24571fe6ce1fbcb8d6510b45938b24d54b6e3ddcb7"
    "6a3c15be46c7ee9ef3f61ba0ced68f25b14c9ffa76873ce3ef864ecd4b16d4f7"
)


def test_nowpayments_node_reference_signature_verifies() -> None:
    NowPaymentsVerifier(["k"]).verify(NODE_BODY.encode(), {"x-nowpayments-sig": NODE_SIG})


def test_nowpayments_node_number_format() -> None:
    _, node_form = canonical_forms(b'{"a":0.00005,"b":1e-7,"c":5.0,"d":1e21,"e":100}')
    assert node_form == b'{"a":0.00005,"b":1e-7,"c":5,"d":1e+21,"e":100}'


@pytest.mark.parametrize("body", [b"", b"not json", b'{"a":NaN}', b"\xff\xfe{", b"[" * 1000])
def test_nowpayments_body_that_is_not_json_cannot_be_verified(body: bytes) -> None:
    headers = {"x-nowpayments-sig": "0" * 128}
    assert refused(verifiers()["nowpayments"], body, headers) == "body is not JSON, cannot verify"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b"[" + b",".join([b"1.5e3"] * 40_000) + b"]",
        b'{"a":"' + b"z" * (nowpayments.MAX_BYTES) + b'"}',
        b'{"k":"' + b":" * nowpayments.MAX_VALUES + b'"}',
    ],
)
def test_nowpayments_bounds_the_work_before_the_signature(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too large or too many values: 413 before any parsing (no canonical form is built)."""
    parsed: list[bytes] = []
    for form in ("python_form", "js_form"):
        real = getattr(nowpayments, form)
        monkeypatch.setattr(nowpayments, form, lambda b, real=real: parsed.append(b) or real(b))
    headers = {"x-nowpayments-sig": "0" * 128}
    with pytest.raises(SignatureError) as caught:
        verifiers()["nowpayments"].verify(body, headers)
    assert parsed == []
    assert caught.value.status == 413 and caught.value.reason == nowpayments.TOO_BIG


def test_nowpayments_builds_the_node_form_only_when_the_python_form_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    real = nowpayments.js_form
    monkeypatch.setattr(nowpayments, "js_form", lambda b: calls.append(b) or real(b))
    v = NowPaymentsVerifier(["k"])
    body = b'{"b":1,"a":"x"}'
    python_sig = hmac.new(b"k", nowpayments.python_form(body), hashlib.sha512).hexdigest()
    v.verify(body, {"x-nowpayments-sig": python_sig})
    assert calls == []
    v.verify(NODE_BODY.encode(), {"x-nowpayments-sig": NODE_SIG})
    assert calls == [NODE_BODY.encode()]


# ---- CoinPayments -----------------------------------------------------------------------------


def test_coinpayments_merchant_must_match() -> None:
    same_secret_other_merchant = settings("ours", merchant="someone-else")
    body, headers = signed_request(sample("coinpayments"), same_secret_other_merchant, NOW)
    assert refused(verifiers()["coinpayments"], body, headers) == "merchant mismatch"


def test_coinpayments_repeated_merchant_field_is_a_mismatch() -> None:
    body, _ = signed_request(sample("coinpayments"), OURS, NOW)
    body += b"&merchant=merchant-1"
    secret = b"ours-coinpayments-secret"
    headers = {"hmac": hmac.new(secret, body, hashlib.sha512).hexdigest()}
    assert refused(verifiers()["coinpayments"], body, headers) == "merchant mismatch"


def test_coinpayments_needs_form_content() -> None:
    body, headers = signed_request(sample("coinpayments"), OURS, NOW)
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    verifiers()["coinpayments"].verify(body, {**headers, "content-type": headers["content-type"]})
    reason = refused(verifiers()["coinpayments"], body, {**headers, "content-type": "text/json"})
    assert "content type" in reason


# ---- Standard Webhooks ------------------------------------------------------------------------


def test_standard_accepts_what_the_reference_library_signs() -> None:
    secret = OURS.standard.secrets[0].get_secret_value()
    body = b'{"id":"evt_1","type":"payment.pending"}'
    now = time.time()
    sig = standardwebhooks.Webhook(secret).sign(
        "msg_1", datetime.fromtimestamp(now, UTC), body.decode()
    )
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now)), "webhook-signature": sig}
    StandardWebhookVerifier([secret], clock=lambda: now).verify(body, headers)


def test_reference_library_accepts_what_the_factory_signs() -> None:
    body, headers = signed_request(sample("standard"), OURS, time.time())
    secret = OURS.standard.secrets[0].get_secret_value()
    standardwebhooks.Webhook(secret).verify(body, headers)


def test_standard_any_matching_signature_passes() -> None:
    body, headers = signed_request(sample("standard"), OURS, NOW)
    other = "v1," + base64.b64encode(b"x" * 32).decode()
    headers["webhook-signature"] = f"v2,abc {other} {headers['webhook-signature']}"
    verifiers()["standard"].verify(body, headers)


def test_standard_signature_of_another_version_is_malformed() -> None:
    body, headers = signed_request(sample("standard"), OURS, NOW)
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    assert refused(verifiers()["standard"], body, headers) == "malformed signature header"


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp"])
def test_standard_missing_id_or_timestamp_is_refused(header: str) -> None:
    body, headers = signed_request(sample("standard"), OURS, NOW)
    del headers[header]
    assert refused(verifiers()["standard"], body, headers) == f"missing {header} header"


def test_standard_id_is_signed() -> None:
    body, headers = signed_request(sample("standard"), OURS, NOW)
    assert refused(verifiers()["standard"], body, {**headers, "webhook-id": "evt_other"}) == (
        "bad signature"
    )


@pytest.mark.parametrize("ts", ["1.79e9", "-1", "abc", "1790000000.5"])
def test_standard_timestamp_must_be_unix_seconds(ts: str) -> None:
    body, headers = signed_request(sample("standard"), OURS, NOW)
    headers["webhook-timestamp"] = ts
    assert refused(verifiers()["standard"], body, headers) == "malformed webhook-timestamp header"


# ---- JWT --------------------------------------------------------------------------------------

HS_SECRET = "jwt-hs256-secret-of-at-least-32-bytes!"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def claims(body: bytes, iat: float = NOW, **extra: Any) -> dict[str, Any]:
    return {"iat": int(iat), "request_body_sha256": hashlib.sha256(body).hexdigest(), **extra}


def jwt_verifier(*specs: JwtKeySpec) -> JwtVerifier:
    return JwtVerifier(list(specs), clock=lambda: NOW)


HS = JwtKeySpec("HS256", HS_SECRET)
RS = JwtKeySpec("RS256", pem_public(RSA_KEY))
ES = JwtKeySpec("ES256", pem_public(EC_KEY))
ALL_KEYS = (HS, RS, ES)


@pytest.mark.parametrize(
    ("alg", "key"),
    [("HS256", HS_SECRET), ("RS256", pem_private(RSA_KEY)), ("ES256", pem_private(EC_KEY))],
)
def test_jwt_tokens_made_by_pyjwt_are_accepted(alg: str, key: str | bytes) -> None:
    body = b'{"id":"evt_1"}'
    token = jwt.encode(claims(body), key, algorithm=alg)
    jwt_verifier(*ALL_KEYS).verify(body, bearer(token))


def test_jwt_factory_can_sign_with_a_private_key() -> None:
    es_only = ProviderSettings(
        jwt=JwtProvider(keys=[JwtKey(alg="ES256", public_key_pem=pem_public(EC_KEY))])
    )
    body, headers = signed_request(
        sample("jwt"), es_only, NOW, jwt_signer=("ES256", pem_private(EC_KEY))
    )
    verifiers(es_only)["jwt"].verify(body, headers)


def test_jwt_alg_none_is_refused() -> None:
    body = b"{}"
    token = jwt.encode(claims(body), "", algorithm="none")
    assert refused(jwt_verifier(*ALL_KEYS), body, bearer(token)) == "token algorithm not accepted"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_jwt_hs256_signed_with_the_public_key_as_secret_is_refused() -> None:
    body = b"{}"
    signing_input = ".".join(
        b64url(json.dumps(part).encode()) for part in ({"alg": "HS256", "typ": "JWT"}, claims(body))
    )
    mac = hmac.new(RS.key.encode(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url(mac)}"
    # only the RSA key configured: HS256 is not its algorithm
    assert refused(jwt_verifier(RS), body, bearer(token)) == "token algorithm not accepted"
    # an HS256 key configured too: the token still does not carry its signature
    assert refused(jwt_verifier(RS, HS), body, bearer(token)) == "bad signature"


def test_jwt_token_of_another_algorithm_than_the_key_is_refused() -> None:
    body = b"{}"
    token = jwt.encode(claims(body), pem_private(RSA_KEY), algorithm="RS256")
    assert refused(jwt_verifier(ES, HS), body, bearer(token)) == "token algorithm not accepted"
    p384 = ec.generate_private_key(ec.SECP384R1())
    es_token = jwt.encode(claims(body), pem_private(p384), algorithm="ES384")
    assert refused(jwt_verifier(ES), body, bearer(es_token)) == "token algorithm not accepted"


def test_jwt_wrong_key_is_refused() -> None:
    body = b"{}"
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(body), pem_private(other), algorithm="ES256")
    assert refused(jwt_verifier(ES), body, bearer(token)) == "bad signature"


def test_jwt_body_hash_must_match() -> None:
    token = jwt.encode(claims(b"{}"), HS_SECRET, algorithm="HS256")
    reason = refused(jwt_verifier(HS), b'{"x":1}', bearer(token))
    assert reason == "request_body_sha256 does not match the body"


@pytest.mark.parametrize("claim", ["iat", "request_body_sha256"])
def test_jwt_required_claims(claim: str) -> None:
    body = b"{}"
    payload = claims(body)
    del payload[claim]
    token = jwt.encode(payload, HS_SECRET, algorithm="HS256")
    assert refused(jwt_verifier(HS), body, bearer(token)) == f"missing {claim} claim"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"exp": NOW - 1}, "token expired"),
        ({"nbf": NOW + 60}, "token not yet valid"),
        ({"iat": "now"}, "malformed iat claim"),
        ({"iat": NOW - 400}, "timestamp outside the 5-minute window"),
    ],
)
def test_jwt_time_claims_use_the_injected_clock(extra: dict[str, Any], reason: str) -> None:
    body = b"{}"
    token = jwt.encode({**claims(body), **extra}, HS_SECRET, algorithm="HS256")
    assert refused(jwt_verifier(HS), body, bearer(token)) == reason


def test_jwt_header_and_scheme_are_case_insensitive() -> None:
    body = b"{}"
    token = jwt.encode(claims(body), HS_SECRET, algorithm="HS256")
    jwt_verifier(HS).verify(body, {"authorization": f"bearer {token}"})
    jwt_verifier(HS).verify(body, {"Authorization": f"BEARER {token}"})


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not.a.jwt", "token"])
def test_jwt_malformed_authorization_is_refused(value: str) -> None:
    reason = refused(jwt_verifier(HS), b"{}", {"authorization": value})
    assert reason in ("authorization header is not a Bearer token", "malformed bearer token")


def test_jwt_non_canonical_base64_is_refused() -> None:
    body = b"{}"
    token = jwt.encode(claims(body), HS_SECRET, algorithm="HS256")
    head, payload, sig = token.split(".")
    # the last character of a 32-byte signature carries 2 unused bits
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(sig[-1])
    twin = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last ^ 1]
    for mangled in (f"{head}.{payload}.{sig[:-1]}{twin}", f"{head}.{payload}.{sig}=="):
        assert refused(jwt_verifier(HS), body, bearer(mangled)) == "malformed bearer token"


def hs256_token(header: Any, payload: Any) -> str:
    """A token signed with HS_SECRET over exactly these header and payload documents."""
    head_and_body = ".".join(b64url(json.dumps(part).encode()) for part in (header, payload))
    mac = hmac.new(HS_SECRET.encode(), head_and_body.encode(), hashlib.sha256).digest()
    return f"{head_and_body}.{b64url(mac)}"


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "crit": ["exp"], "exp": 1},  # an extension we do not understand
        {"alg": "HS256", "crit": ["b64"], "b64": False},  # a detached payload
        {"alg": "HS256", "b64": False},
        {"alg": "HS256", "kid": 7},
    ],
)
def test_jwt_headers_we_do_not_understand_are_refused(header: dict[str, Any]) -> None:
    body = b"{}"
    token = hs256_token(header, claims(body))
    assert refused(jwt_verifier(HS), body, bearer(token)) == "malformed bearer token"


@pytest.mark.parametrize("payload", [["iat"], "claims", 1790000000])
def test_jwt_signed_payload_that_is_not_an_object_is_refused(payload: Any) -> None:
    token = hs256_token({"alg": "HS256", "typ": "JWT"}, payload)
    assert refused(jwt_verifier(HS), b"{}", bearer(token)) == "malformed bearer token"


def test_jwt_a_string_kid_and_a_typ_are_fine() -> None:
    body = b"{}"
    token = hs256_token({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims(body))
    jwt_verifier(HS).verify(body, bearer(token))


def test_jwt_a_payload_is_read_only_once_its_signature_holds() -> None:
    head = b64url(json.dumps({"alg": "HS256"}).encode())
    token = f"{head}.{b64url(b'not json')}.{b64url(b'x' * 32)}"
    assert refused(jwt_verifier(HS), b"{}", bearer(token)) == "bad signature"


@pytest.mark.parametrize("extra", [{"sub": 7}, {"jti": ["a"]}, {"sub": None}])
def test_jwt_sub_and_jti_must_be_strings_when_given(extra: dict[str, Any]) -> None:
    body = b"{}"
    token = jwt.encode({**claims(body), **extra}, HS_SECRET, algorithm="HS256")
    assert refused(jwt_verifier(HS), body, bearer(token)) == "malformed bearer token"
