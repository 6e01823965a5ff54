"""The merchant API token for test clients: added to merchant API requests that carry no
``Authorization`` of their own (a request can opt out with ``auth=None``)."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from pipeline.settings import Settings

#: the routes that read or write payment data (webhooks have their provider signatures)
MERCHANT_PATHS = ("/checkouts", "/transactions/")


def api_token(settings: Settings) -> str:
    assert settings.api.tokens, "config/local.toml must set [api] tokens"
    return settings.api.tokens[0].get_secret_value()


class MerchantAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if request.url.path.startswith(MERCHANT_PATHS) and "authorization" not in request.headers:
            request.headers["authorization"] = f"Bearer {self.token}"
        yield request
