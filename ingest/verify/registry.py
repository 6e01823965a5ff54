"""One verifier per provider, built once from the settings at startup."""

from __future__ import annotations

from pydantic import SecretStr

from ingest.verify import btcpay, coinbase, coinpayments, jwt, nowpayments, standard
from ingest.verify.base import Clock, Headers, SignatureError, Verifier, system_clock
from ingest.verify.btcpay import BtcPayVerifier
from ingest.verify.coinbase import CoinbaseVerifier
from ingest.verify.coinpayments import CoinPaymentsVerifier
from ingest.verify.jwt import JwtKeySpec, JwtVerifier
from ingest.verify.nowpayments import NowPaymentsVerifier
from ingest.verify.standard import StandardWebhookVerifier
from pipeline.settings import ConfigError, JwtKey, ProviderSettings

#: the header that carries each provider's signature (each verifier's own constant)
SIGNATURE_HEADERS: dict[str, str] = {
    "coinbase": coinbase.HEADER,
    "btcpay": btcpay.HEADER,
    "nowpayments": nowpayments.HEADER,
    "coinpayments": coinpayments.HEADER,
    "standard": standard.SIGNATURE,
    "jwt": jwt.HEADER,
}


class NotConfigured:
    """The verifier of a provider without secrets: refuses everything (fail closed)."""

    kept_headers: tuple[str, ...] = ()

    def verify(self, body: bytes, headers: Headers) -> None:
        raise SignatureError("provider not configured")


def build_verifiers(
    providers: ProviderSettings, clock: Clock = system_clock
) -> dict[str, Verifier]:
    """Verifiers for all six providers. Empty secrets are dropped: an empty HMAC key is public.

    Raises ConfigError (naming the provider, never the secret) for a secret that cannot be used.
    """
    coinbase = _plain(providers.coinbase.secrets)
    btcpay = _plain(providers.btcpay.secrets)
    nowpayments = _plain(providers.nowpayments.secrets)
    coinpayments = _plain(providers.coinpayments.secrets)
    merchant = providers.coinpayments.merchant_id
    standard = _plain(providers.standard.secrets)
    jwt_keys = [_jwt_spec(k) for k in providers.jwt.keys]
    verifiers: dict[str, Verifier] = {
        "coinbase": CoinbaseVerifier(coinbase) if coinbase else NotConfigured(),
        "btcpay": BtcPayVerifier(btcpay) if btcpay else NotConfigured(),
        "nowpayments": NowPaymentsVerifier(nowpayments) if nowpayments else NotConfigured(),
        "coinpayments": (
            CoinPaymentsVerifier(coinpayments, merchant)
            if coinpayments and merchant
            else NotConfigured()
        ),
    }
    try:
        verifiers["standard"] = (
            StandardWebhookVerifier(standard, clock) if standard else NotConfigured()
        )
    except ValueError as exc:
        raise ConfigError(f"providers.standard: {exc}") from None
    try:
        verifiers["jwt"] = JwtVerifier(jwt_keys, clock) if jwt_keys else NotConfigured()
    except ValueError as exc:
        raise ConfigError(f"providers.jwt: {exc}") from None
    return verifiers


def _plain(secrets: list[SecretStr]) -> list[str]:
    return [s.get_secret_value() for s in secrets if s.get_secret_value()]


def _jwt_spec(key: JwtKey) -> JwtKeySpec:
    if key.alg == "HS256":
        return JwtKeySpec("HS256", key.secret.get_secret_value() if key.secret else "")
    return JwtKeySpec(key.alg, key.public_key_pem or "")
