"""The merchant API's credential and media type, and configuration errors without secrets
(in-memory writer: nothing running; tests/integration/test_api_security.py has the real stack)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from pydantic import SecretStr

from ingest.app import create_app
from ingest.auth import NO_TOKENS, Tokens, bearer
from ingest.writer import MemoryWriter
from pipeline.settings import ApiSettings, Settings
from tests.explicit_settings import unit_settings

CHECKOUT = {
    "provider": "btcpay",
    "external_id": "inv-1",
    "order_id": "o-1",
    "amount": "12.50",
    "currency": "USDC",
}


def with_tokens(*tokens: str) -> Settings:
    api = ApiSettings(tokens=[SecretStr(t) for t in tokens])
    return unit_settings().model_copy(update={"api": api})


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(with_tokens("current", "next"), MemoryWriter())) as c:
        yield c


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer wrong", "Bearer current2", "Basic current", "current"],
)
def test_missing_or_wrong_token_is_401_json(client: TestClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    for r in (
        client.post("/checkouts", json=CHECKOUT, headers=headers),
        client.get("/transactions/btcpay/inv-1", headers=headers),
    ):
        assert r.status_code == 401, authorization
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["detail"] and "current" not in r.json()["detail"]
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_both_tokens_of_a_rotation_are_accepted() -> None:
    writer = MemoryWriter()
    with TestClient(create_app(with_tokens("current", "next"), writer)) as c:
        for token in ("current", "next", "  next  "):
            r = c.post("/checkouts", json=CHECKOUT, headers={"authorization": f"bearer {token}"})
            assert r.status_code == 202, token
    assert len(writer.raw) == 3


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_checkouts_take_json_only(client: TestClient, content_type: str | None) -> None:
    """What a cross-site form or a no-cors fetch can send is refused before it is read."""
    headers = {"authorization": "Bearer current"}
    if content_type:
        headers["content-type"] = content_type
    body = b'{"provider":"btcpay","external_id":"x","order_id":"o","amount":"1","currency":"BTC"}'
    r = client.post("/checkouts", content=body, headers=headers)
    assert r.status_code == 415, content_type
    assert "application/json" in r.json()["detail"]


def test_the_token_is_checked_before_the_media_type(client: TestClient) -> None:
    r = client.post("/checkouts", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 401


def test_no_token_configured_closes_the_merchant_api() -> None:
    with TestClient(create_app(with_tokens(), MemoryWriter())) as c:
        for headers in ({}, {"authorization": "Bearer "}, {"authorization": "Bearer anything"}):
            r = c.post("/checkouts", json=CHECKOUT, headers=headers)
            assert r.status_code == 401 and r.json()["detail"] == NO_TOKENS
        assert c.get("/health").status_code == 200  # the rest of ingest still runs


def test_webhooks_need_no_api_token(client: TestClient) -> None:
    r = client.post("/webhooks/coinbase", content=b"{}", headers={"x-cc-webhook-signature": "0"})
    assert r.status_code == 401 and r.json()["detail"].startswith("signature rejected")


def test_the_openapi_document_declares_the_bearer_scheme(client: TestClient) -> None:
    doc = client.get("/schema/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["apiToken"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    checkout = doc["paths"]["/checkouts"]["post"]
    tx = doc["paths"]["/transactions/{provider}/{external_id}"]["get"]
    for op in (checkout, tx):
        assert op["security"] == [{"apiToken": []}]
        assert "401" in op["responses"]
    assert "415" in checkout["responses"]
    assert "security" not in doc["paths"]["/webhooks/{provider}"]["post"]


def test_token_matching_compares_every_token() -> None:
    tokens = Tokens(["a", "", "b"])
    assert len(tokens.digests) == 2  # an empty token is never a credential
    assert tokens.match("a") == tokens.digests[0] and tokens.match("b") == tokens.digests[1]
    assert tokens.match("c") is None and tokens.match("") is None
    assert not Tokens([]) and bearer("Bearer  x ") == "x" and bearer("Token x") == ""


SECRET = "s3cret-value-that-must-not-leak"


@pytest.mark.parametrize(
    "toml",
    [
        f'[providers.coinbase]\nsecrets = "{SECRET}"\n',
        f'[api]\ntokens = "{SECRET}"\n',
        f'[postgres]\ndsn = ["{SECRET}"]\n',
        f'[providers.jwt]\nkeys = [{{ alg = "none", secret = "{SECRET}" }}]\n',
        f'[dashboard]\ntoken = "x"\nnope = "{SECRET}"\n',
    ],
)
def test_a_config_error_never_prints_a_secret(tmp_path: Path, toml: str) -> None:
    """The process's whole output (one line, exit status 1), not only the exception text."""
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    env = {**os.environ, "PIPELINE_CONFIG": str(path)}
    done = subprocess.run(
        [sys.executable, "-m", "ingest.main"], env=env, capture_output=True, text=True, timeout=60
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "invalid config" in out and SECRET not in out, out
    assert len(out.strip().splitlines()) == 1, out


def test_a_config_error_from_the_environment_never_prints_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"  # a valid file: the error is the environment's
    empty.write_text("")
    env = {
        **os.environ,
        "PIPELINE_CONFIG": str(empty),
        "PIPELINE_API__TOKENS": SECRET,
        "PIPELINE_INGEST__PORT": SECRET,
    }
    done = subprocess.run(
        [sys.executable, "-m", "ingest.main"], env=env, capture_output=True, text=True, timeout=60
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "invalid config" in out and SECRET not in out, out
