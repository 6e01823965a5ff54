"""JWT: ``Authorization: Bearer <compact JWS>`` over claims ``iat`` and ``request_body_sha256``.

Each configured key accepts only its own algorithm (HS256 with a shared secret, RS256 or ES256
with a public key), so ``none`` and HS/RS key confusion cannot pass. The signature is checked
by PyJWT's algorithm objects (``cryptography`` underneath), each key prepared once; the token's
three segments are read here, once, in their canonical spelling, and its time claims checked
against the injected clock. ``jwt.decode`` did the same checks and read everything twice more
(decision 0140).
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

import orjson
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import Algorithm, get_default_algorithms
from jwt.exceptions import InvalidKeyError

from ingest.verify.base import Clock, Headers, SignatureError, check_fresh, system_clock

HEADER = "authorization"
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
REQUIRED = ("iat", "request_body_sha256")


@dataclass(frozen=True, slots=True)
class JwtKeySpec:
    """One accepted key: ``key`` is the HS256 secret, or the RS256/ES256 public key PEM."""

    alg: Literal["HS256", "RS256", "ES256"]
    key: str


class JwtVerifier:
    kept_headers: tuple[str, ...] = ()

    def __init__(self, keys: Sequence[JwtKeySpec], clock: Clock = system_clock) -> None:
        algorithms = get_default_algorithms()
        self._keys: list[tuple[str, Algorithm, Any]] = []
        for k in keys:
            algorithm = algorithms[k.alg]
            try:
                prepared = algorithm.prepare_key(_load_key(k))
            except InvalidKeyError:  # an HS256 secret that is a PEM or SSH key, or a JWK
                raise ValueError(f"{k.alg} secret must not be a public key") from None
            self._keys.append((k.alg, algorithm, prepared))
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
        """The claims of a token signed by one of the keys, or the refusal: as ``jwt.decode``
        with the algorithm pinned per key, no ``crit`` extension understood (RFC 7515 4.1.11)
        and the payload a JSON object with the required claims (``sub`` and ``jti``, if
        there, strings)."""
        segments = _segments(token)
        if segments is None:
            raise SignatureError("malformed bearer token")
        header = _object(segments[0])
        alg = header.get("alg")
        candidates = [(a, key) for key_alg, a, key in self._keys if key_alg == alg]
        if not isinstance(alg, str) or not candidates:
            raise SignatureError("token algorithm not accepted")
        if (
            "crit" in header
            or header.get("b64", True) is not True
            or not isinstance(header.get("kid", ""), str)
        ):
            raise SignatureError("malformed bearer token")
        signing_input = token[: token.rindex(".")].encode()
        if not any(a.verify(signing_input, key, segments[2]) for a, key in candidates):
            raise SignatureError("bad signature")
        claims = _object(segments[1])
        for claim in REQUIRED:
            if claims.get(claim) is None:
                raise SignatureError(f"missing {claim} claim")
        if any(not isinstance(claims.get(c, ""), str) for c in ("sub", "jti")):  # as PyJWT
            raise SignatureError("malformed bearer token")
        return claims


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


def _segments(token: str) -> list[bytes] | None:
    """The three base64url segments, decoded, if each is in its one canonical spelling: no
    padding, no stray characters, no unused bits set (PyJWT's decoder would tolerate all
    three); None otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(p) for p in parts):
        return None
    try:
        decoded = [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts]
    except binascii.Error:  # a segment of 4n+1 characters
        return None
    for d, p in zip(decoded, parts, strict=True):
        if base64.urlsafe_b64encode(d).rstrip(b"=").decode() != p:
            return None
    return decoded


def _object(segment: bytes) -> dict[str, Any]:
    """A header or payload segment: a JSON object."""
    try:
        value = orjson.loads(segment)
    except orjson.JSONDecodeError:
        raise SignatureError("malformed bearer token") from None
    if not isinstance(value, dict):
        raise SignatureError("malformed bearer token")
    return value


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SignatureError(f"malformed {name} claim")
    return float(value)


def _load_key(spec: JwtKeySpec) -> Any:
    """The key for PyJWT's algorithm; ValueError (never echoing it) when it does not fit alg."""
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
