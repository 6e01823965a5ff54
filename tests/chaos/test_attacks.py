"""Attacks on the real stack's signatures and sizes: forged and replayed signatures, stale
and future timestamps, JWT tricks (``alg: none``, HS256 keyed with a public key, algorithms
a key does not have, missing claims), oversized bodies. The web surface (CORS, the dashboard,
injection in path, query and headers) is in test_attacks_web.py.

Where the stack's own ingest lacks what an attack needs (an RS256 and an ES256 key, a clock
that can move past the replay window), a second ingest runs in this process, wired to the
same Kafka and Postgres.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import clickhouse_connect
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from ingest.verify.registry import SIGNATURE_HEADERS
from pipeline.settings import JwtKey, JwtProvider, ProviderSettings, Settings
from stack.launcher import StackInfo
from testing.webhooks import signed_request
from tests.chaos.hostile import PROVIDERS, sample
from tests.chaos.inprocess import serve, stack_settings
from tests.chaos.probes import (
    check_answer,
    landed,
    remember,
    row,
    sign,
    sized,
    wait_for,
)

SIG_HEADER = SIGNATURE_HEADERS


def outcome_of(ch: clickhouse_connect.driver.Client, delivery_id: str) -> str | None:
    rows = ch.query(
        "SELECT outcome FROM ingest_log WHERE delivery_id = {d:String}",
        parameters={"d": delivery_id},
    ).result_rows
    return str(rows[0][0]) if rows else None


# -- forged signatures ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@sized(ci=15, full=300)
@given(forged=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1))
def test_forged_signatures_are_refused(
    provider: str, forged: str, http: httpx.Client, settings: Settings
) -> None:
    ev = sample(provider, f"forged-{uuid.uuid4().hex[:10]}")
    body, headers = signed_request(ev, settings.providers)
    name = SIG_HEADER[provider]
    prefix = {"btcpay": "sha256=", "standard": "v1,", "jwt": "Bearer "}.get(provider, "")
    r = http.post(f"/webhooks/{provider}", content=body, headers={**headers, name: prefix + forged})
    check_answer(r, {401})


# -- replays and timestamps ------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["standard", "jwt"])
def test_a_replay_within_the_window_is_accepted_but_changes_nothing(
    provider: str,
    http: httpx.Client,
    stack: StackInfo,
    settings: Settings,
    ch: clickhouse_connect.driver.Client,
) -> None:
    ev = sample(provider, f"replay-{uuid.uuid4().hex[:10]}", "confirmed")
    body, headers = remember(*signed_request(ev, settings.providers))
    first = http.post(f"/webhooks/{provider}", content=body, headers=headers)
    check_answer(first, {202})
    before = landed(stack.postgres_dsn, provider, ev.external_id)
    again = http.post(f"/webhooks/{provider}", content=body, headers=headers)  # the same bytes
    check_answer(again, {202})
    wait_for(lambda: outcome_of(ch, again.json()["id"]), lambda o: o is not None, 60, "replay")
    assert outcome_of(ch, again.json()["id"]) == "duplicate"
    # status, version, updated_at, amount, number of events: all unchanged
    assert row(stack.postgres_dsn, provider, ev.external_id) == before


@pytest.fixture(scope="module")
def moving_clock(settings: Settings, stack: StackInfo) -> Iterator[tuple[str, list[float]]]:
    """A second ingest whose clock runs ``offset[0]`` seconds ahead of the real one."""
    offset = [0.0]
    with serve(stack_settings(settings, stack), clock=lambda: time.time() + offset[0]) as url:
        yield url, offset


@pytest.mark.parametrize("provider", ["standard", "jwt"])
def test_the_same_request_after_the_window_is_refused(
    provider: str, moving_clock: tuple[str, list[float]], settings: Settings
) -> None:
    url, offset = moving_clock
    ev = sample(provider, f"late-replay-{uuid.uuid4().hex[:10]}")
    body, headers = remember(*signed_request(ev, settings.providers))
    with httpx.Client(base_url=url, timeout=15) as client:
        offset[0] = 0
        check_answer(client.post(f"/webhooks/{provider}", content=body, headers=headers), {202})
        offset[0] = 290  # still inside the 5 minutes
        check_answer(client.post(f"/webhooks/{provider}", content=body, headers=headers), {202})
        offset[0] = 301  # five minutes and a second later, byte for byte the same request
        late = client.post(f"/webhooks/{provider}", content=body, headers=headers)
        offset[0] = 0
    check_answer(late, {401}, "replayed after the window")
    assert "5-minute window" in late.json()["detail"]


@pytest.mark.parametrize("provider", ["standard", "jwt"])
# whole seconds are signed; a future timestamp comes closer to the window while the request
# travels, so it is well past it (302 s failed on a slow host)
@pytest.mark.parametrize("skew", [-3600, -301, 330, 3600, 10**9])
def test_stale_and_future_timestamps_are_refused(
    provider: str, skew: int, http: httpx.Client, settings: Settings
) -> None:
    ev = sample(provider, f"skew-{uuid.uuid4().hex[:10]}")
    body, headers = remember(*signed_request(ev, settings.providers, time.time() + skew))
    r = http.post(f"/webhooks/{provider}", content=body, headers=headers)
    check_answer(r, {401}, f"skew {skew}")
    assert "window" in r.json()["detail"]


# -- JWT ---------------------------------------------------------------------------------------


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(body: bytes, iat: float | None = None, **extra: Any) -> dict[str, Any]:
    out = {"iat": int(time.time() if iat is None else iat)}
    out["request_body_sha256"] = hashlib.sha256(body).hexdigest()  # type: ignore[assignment]
    return {**out, **extra}


def hs256(claims: dict[str, Any], key: bytes, header: dict[str, Any] | None = None) -> str:
    """HS256 by hand: PyJWT refuses to key HMAC with a PEM, which is exactly the attack."""
    head = b64(header or {"alg": "HS256", "typ": "JWT"})
    signing_input = f"{head}.{b64(claims)}".encode()
    return f"{head}.{b64(claims)}.{b64(hmac.new(key, signing_input, hashlib.sha256).digest())}"


def public_pem(key: Any) -> str:
    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "rsa": rsa_key,
        "ec": ec_key,
        "other_ec": ec.generate_private_key(ec.SECP256R1()),
        "rsa_pem": public_pem(rsa_key),
        "ec_pem": public_pem(ec_key),
    }


@pytest.fixture(scope="module")
def jwt_ingest(settings: Settings, stack: StackInfo, keys: dict[str, Any]) -> Iterator[str]:
    """A second ingest that accepts HS256, RS256 and ES256, one key each."""
    jwt_keys = [
        *settings.providers.jwt.keys[:1],
        JwtKey(alg="RS256", public_key_pem=keys["rsa_pem"]),
        JwtKey(alg="ES256", public_key_pem=keys["ec_pem"]),
    ]
    providers = settings.providers.model_copy(update={"jwt": JwtProvider(keys=jwt_keys)})
    with serve(stack_settings(settings, stack, providers=providers)) as url:
        yield url


def jwt_post(url: str, body: bytes, token: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=15) as client:
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        return client.post("/webhooks/jwt", content=body, headers=headers)


_BODY_ONLY = ProviderSettings(
    jwt=JwtProvider(keys=[JwtKey(alg="HS256", secret=SecretStr("x" * 32))])
)


def generic_body(tag: str) -> bytes:
    """The generic event body of a fresh payment (its signature is made by each test)."""
    return signed_request(sample("jwt", f"{tag}-{uuid.uuid4().hex[:10]}"), _BODY_ONLY)[0]


def test_properly_signed_rs256_and_es256_tokens_pass(jwt_ingest: str, keys: dict[str, Any]) -> None:
    """The control: the keys really work, so the refusals below are about the attack."""
    for alg, key in (("RS256", keys["rsa"]), ("ES256", keys["ec"])):
        body = generic_body(alg.lower())
        token = jwt.encode(claims_for(body), key, algorithm=alg)
        remember(body, {"authorization": f"Bearer {token}"})
        check_answer(jwt_post(jwt_ingest, body, token), {202}, alg)


def jwt_attacks(keys: dict[str, Any], body: bytes, hs_secret: str) -> dict[str, str]:
    claims = claims_for(body)
    rsa_pem, ec_pem = keys["rsa_pem"].encode(), keys["ec_pem"].encode()
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    es256 = jwt.encode(claims, keys["ec"], algorithm="ES256").split(".")
    attacker_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(keys["other_ec"].public_key()))
    valid_hs256 = jwt.encode(claims, hs_secret, algorithm="HS256")
    return {
        "alg none": unsigned,
        "alg None": f"{b64({'alg': 'None'})}.{b64(claims)}.",
        "alg NONE, signature kept": f"{b64({'alg': 'NONE'})}.{b64(claims)}.{b64(b'x' * 32)}",
        "HS256 keyed with the RSA public key PEM": hs256(claims, rsa_pem),
        "HS256 keyed with the EC public key PEM": hs256(claims, ec_pem),
        "HS256 keyed with the PEM, header says RS256": hs256(claims, rsa_pem, {"alg": "RS256"}),
        "RS512 with the RSA key": jwt.encode(claims, keys["rsa"], algorithm="RS512"),
        "PS256 with the RSA key": jwt.encode(claims, keys["rsa"], algorithm="PS256"),
        "HS512 with the HS256 secret": jwt.encode(claims, hs_secret, algorithm="HS512"),
        "ES256 by another key": jwt.encode(claims, keys["other_ec"], algorithm="ES256"),
        "ES256 by another key, its jwk in the header": jwt.encode(
            claims, keys["other_ec"], algorithm="ES256", headers={"jwk": attacker_jwk}
        ),
        "RS256 header, ES256 signature": ".".join([b64({"alg": "RS256"}), *es256[1:]]),
        "no request_body_sha256": jwt.encode({"iat": int(time.time())}, keys["rsa"], "RS256"),
        "hash of another body": jwt.encode(claims_for(b"{}"), keys["rsa"], algorithm="RS256"),
        "iat 301 s old": jwt.encode(claims_for(body, time.time() - 301), keys["rsa"], "RS256"),
        # made before the requests before it are sent: 302 s ahead fell inside the window on a
        # slow host by the time it was sent
        "iat 330 s ahead": jwt.encode(claims_for(body, time.time() + 330), keys["ec"], "ES256"),
        "iat as a string": jwt.encode({**claims, "iat": str(claims["iat"])}, hs_secret, "HS256"),
        "expired exp": jwt.encode({**claims, "exp": int(time.time()) - 10}, hs_secret, "HS256"),
        "valid HS256, signature padded": valid_hs256 + "=",
        "valid HS256, header padded": valid_hs256.replace(".", "=.", 1),
    }


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # HS512 with a short key: the attack
def test_jwt_attacks_are_refused(jwt_ingest: str, keys: dict[str, Any], settings: Settings) -> None:
    key = settings.providers.jwt.keys[0].secret
    assert key is not None
    body = generic_body("jwt-attack")
    attacks = jwt_attacks(keys, body, key.get_secret_value())
    for name, token in attacks.items():
        remember(body, {"authorization": f"Bearer {token}"})
        r = jwt_post(jwt_ingest, body, token)
        check_answer(r, {401}, name)
    missing = jwt_post(jwt_ingest, body, attacks["no request_body_sha256"])
    assert "missing request_body_sha256 claim" in missing.json()["detail"]
    for name in ("alg none", "HS256 keyed with the RSA public key PEM", "RS512 with the RSA key"):
        detail = jwt_post(jwt_ingest, body, attacks[name]).json()["detail"]
        assert "not accepted" in detail or "bad signature" in detail, (name, detail)


@pytest.mark.filterwarnings("ignore:The HMAC key is")
def test_jwt_attacks_on_the_stack_hs256_only(http: httpx.Client, settings: Settings) -> None:
    key = settings.providers.jwt.keys[0].secret
    assert key is not None
    body = generic_body("stack-jwt-attack")
    claims = claims_for(body)
    for name, token in {
        "alg none": f"{b64({'alg': 'none'})}.{b64(claims)}.",
        "HS256 with a guessed secret": jwt.encode(claims, "secret" * 6, algorithm="HS256"),
        "HS512 with the real secret": jwt.encode(claims, key.get_secret_value(), "HS512"),
        "no iat": jwt.encode({"request_body_sha256": claims["request_body_sha256"]}, "x" * 32),
    }.items():
        r = http.post(
            "/webhooks/jwt",
            content=body,
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        )
        check_answer(r, {401}, name)


# -- size ----------------------------------------------------------------------------------------


def test_oversized_bodies_are_413(http: httpx.Client, settings: Settings) -> None:
    big = b'{"provider":"coinbase","external_id":"' + b"x" * (300 * 1024) + b'"}'
    json_type = {"content-type": "application/json"}
    check_answer(http.post("/checkouts", content=big, headers=json_type), {413}, "checkout")
    headers = sign("coinbase", big, settings.providers, record=False)
    check_answer(http.post("/webhooks/coinbase", content=big, headers=headers), {413}, "signed")
