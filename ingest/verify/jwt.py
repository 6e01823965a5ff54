"""JWT: ``Authorization: Bearer <compact JWS>`` over claims ``iat`` and ``request_body_sha256``.

Each configured key accepts only its own algorithm (HS256 with a shared secret, RS256 or ES256
with a public key), so ``none`` and HS/RS key confusion cannot pass. PyJWT checks the signature;
the time claims are checked here against the injected clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.types import Options

from ingest.verify.base import Clock, Headers, SignatureError, check_fresh, system_clock

HEADER = "authorization"
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_OPTIONS: Options = {
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "require": ["iat", "request_body_sha256"],
}


@dataclass(frozen=True, slots=True)
class JwtKeySpec:
    """One accepted key: ``key`` is the HS256 secret, or the RS256/ES256 public key PEM."""

    alg: Literal["HS256", "RS256", "ES256"]
    key: str


class JwtVerifier:
    kept_headers: tuple[str, ...] = ()

    def __init__(self, keys: Sequence[JwtKeySpec], clock: Clock = system_clock) -> None:
        self._keys = [(k.alg, _load_key(k)) for k in keys]
        self._clock = clock

    def verify(self, body: bytes, headers: Headers) -> None:
        claims = self._decode(_bearer(headers))
        now = self._clock()
        check_fresh(_number(claims, "iat"), now)
        if "exp" in claims and _number(claims, "exp") <= now:
            raise SignatureError("token expired")
        if "nbf" in claims and _number(claims, "nbf") > now:
            raise SignatureError("token not yet valid")
        given = claims["request_body_sha256"]
        digest = hashlib.sha256(body).hexdigest().encode()
        if not isinstance(given, str) or not hmac.compare_digest(given.lower().encode(), digest):
            raise SignatureError("request_body_sha256 does not match the body")

    def _decode(self, token: str) -> dict[str, Any]:
        if not _canonical(token):
            raise SignatureError("malformed bearer token")
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.DecodeError:
            raise SignatureError("malformed bearer token") from None
        candidates = [key for key_alg, key in self._keys if key_alg == alg]
        if not isinstance(alg, str) or not candidates:
            raise SignatureError("token algorithm not accepted")
        for key in candidates:
            try:
                claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg], options=_OPTIONS)
                return claims
            except jwt.InvalidSignatureError:
                continue
            except jwt.MissingRequiredClaimError as exc:
                raise SignatureError(f"missing {exc.claim} claim") from None
            except jwt.InvalidTokenError:
                raise SignatureError("malformed bearer token") from None
        raise SignatureError("bad signature")


def _bearer(headers: Headers) -> str:
    value = headers.get(HEADER)
    if value is None:  # the mapping is lower-case by contract; tolerate one that is not
        value = next((v for k, v in headers.items() if k.lower() == HEADER), None)
    if not value:
        raise SignatureError("missing authorization header")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignatureError("authorization header is not a Bearer token")
    return token.strip()


def _canonical(token: str) -> bool:
    """Three base64url segments in their one canonical spelling: no padding, no stray
    characters, no unused bits set (PyJWT's decoder would tolerate all three)."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(p) for p in parts):
        return False
    try:
        decoded = [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts]
    except binascii.Error:  # a segment of 4n+1 characters
        return False
    return all(
        base64.urlsafe_b64encode(d).rstrip(b"=").decode() == p
        for d, p in zip(decoded, parts, strict=True)
    )


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SignatureError(f"malformed {name} claim")
    return float(value)


def _load_key(spec: JwtKeySpec) -> Any:
    """The key object for PyJWT; ValueError (never echoing the key) when it does not fit alg."""
    if spec.alg == "HS256":
        if not spec.key:
            raise ValueError("HS256 key needs a non-empty secret")
        return spec.key.encode()
    pem = spec.key.encode()
    try:
        if b"BEGIN CERTIFICATE" in pem:
            public: Any = x509.load_pem_x509_certificate(pem).public_key()
        else:
            public = load_pem_public_key(pem)
    except ValueError:
        raise ValueError(f"{spec.alg} key is not a PEM public key") from None
    if spec.alg == "RS256" and isinstance(public, rsa.RSAPublicKey):
        return public
    if (
        spec.alg == "ES256"
        and isinstance(public, ec.EllipticCurvePublicKey)
        and isinstance(public.curve, ec.SECP256R1)
    ):
        return public
    raise ValueError(f"{spec.alg} needs a matching public key (RSA, or EC P-256)")
