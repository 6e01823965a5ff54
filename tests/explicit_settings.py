"""Settings for unit tests, given in full: never the shipped ``config/*.toml`` and never the
``PIPELINE_*`` variables of whatever shell or CI runs the tests.

Integration tests use the shipped config on purpose (the ``settings`` fixture of
tests/conftest.py): it is what the local stack they talk to was started with."""

from __future__ import annotations

import base64
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from pipeline.settings import (
    ApiSettings,
    CoinPaymentsProvider,
    DashboardSettings,
    JwtKey,
    JwtProvider,
    ProviderSettings,
    SecretsProvider,
    Settings,
)

API_TOKENS = ("unit-api-token", "unit-api-token-next")
DASHBOARD_TOKEN = "unit-dashboard-token"
PROVIDERS = ProviderSettings(
    coinbase=SecretsProvider(secrets=[SecretStr("unit-coinbase"), SecretStr("unit-coinbase-2")]),
    btcpay=SecretsProvider(secrets=[SecretStr("unit-btcpay")]),
    nowpayments=SecretsProvider(secrets=[SecretStr("unit-nowpayments")]),
    coinpayments=CoinPaymentsProvider(
        secrets=[SecretStr("unit-coinpayments")], merchant_id="unit-merchant"
    ),
    standard=SecretsProvider(
        secrets=[SecretStr("whsec_" + base64.b64encode(b"unit-standard-key").decode())]
    ),
    jwt=JwtProvider(keys=[JwtKey(alg="HS256", secret=SecretStr("unit-jwt-hs256-" + "k" * 32))]),
)


class _Given(Settings):
    """``Settings`` from the constructor's arguments alone."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def unit_settings(**changes: Any) -> Settings:
    """The code's defaults plus test tokens and secrets for every provider; ``changes``
    replace whole sections (``api=ApiSettings(...)``)."""
    given: dict[str, Any] = {
        "api": ApiSettings(tokens=[SecretStr(t) for t in API_TOKENS]),
        "dashboard": DashboardSettings(token=SecretStr(DASHBOARD_TOKEN)),
        "providers": PROVIDERS,
    }
    return _Given(**{**given, **changes})
