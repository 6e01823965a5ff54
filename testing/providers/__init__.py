"""One builder per provider, by the provider's name in ``POST /webhooks/{provider}``."""

from __future__ import annotations

from testing.builder import Builder
from testing.providers import btcpay, coinbase, coinpayments, jwt, nowpayments, standard

BUILDERS: dict[str, Builder] = {
    "coinbase": coinbase.BUILDER,
    "btcpay": btcpay.BUILDER,
    "nowpayments": nowpayments.BUILDER,
    "coinpayments": coinpayments.BUILDER,
    "standard": standard.BUILDER,
    "jwt": jwt.BUILDER,
}
