"""JWT: a compact JWS in ``Authorization: Bearer`` with claims ``iat`` and
``request_body_sha256``, signed with the first HS256 key or a given private key."""

from __future__ import annotations

import hashlib

import jwt

from pipeline.settings import ProviderSettings
from testing.builder import Builder, Signing
from testing.encode import JSON
from testing.providers import generic
from testing.sample import SampleEvent


def headers(ev: SampleEvent, raw: bytes, signing: Signing) -> dict[str, str]:
    alg, key = signing.jwt_signer or hs256_key(signing.providers)
    claims = {"iat": int(signing.when), "request_body_sha256": hashlib.sha256(raw).hexdigest()}
    return {
        "content-type": JSON,
        "authorization": "Bearer " + jwt.encode(claims, key, algorithm=alg),
    }


def hs256_key(providers: ProviderSettings) -> tuple[str, str | bytes]:
    for key in providers.jwt.keys:
        if key.alg == "HS256" and key.secret is not None and key.secret.get_secret_value():
            return "HS256", key.secret.get_secret_value()
    raise ValueError("jwt: no HS256 key configured; pass jwt_signer=(alg, private key PEM)")


BUILDER = Builder(generic.STATUSES, generic.body, headers)
