"""The dashboard's access rules and lag arithmetic, and ingest's metrics, without any service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiokafka import TopicPartition
from httpx import Response
from litestar.testing import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from ingest.app import create_app
from ingest.auth import Tokens
from ingest.dashboard import session
from ingest.dashboard.lag import lag_rows
from ingest.writer import MemoryWriter
from pipeline.settings import ApiSettings, DashboardSettings, Settings
from testing.webhooks import SampleEvent, signed_request
from tests.explicit_settings import unit_settings

TOKEN = "unit-test-dashboard-token"
API_TOKEN = "unit-test-api-token"


def with_tokens(dashboard: str, *api: str) -> Settings:
    return unit_settings().model_copy(
        update={
            "dashboard": DashboardSettings(token=SecretStr(dashboard)),
            "api": ApiSettings(tokens=[SecretStr(t) for t in api]),
        }
    )


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(with_tokens(TOKEN, API_TOKEN), MemoryWriter())) as c:
        yield c


def login(client: TestClient, token: str) -> Response:
    return client.post("/dashboard/login", data={"token": token}, follow_redirects=False)


def test_no_token_at_all_turns_the_dashboard_off() -> None:
    with TestClient(create_app(with_tokens(""), MemoryWriter())) as c:
        for path in ("/dashboard", "/dashboard/api/statuses", "/dashboard/static/charts.js"):
            assert c.get(path, headers={"Authorization": "Bearer "}).status_code == 404, path


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer"},
        {"Cookie": f"token={TOKEN}"},
        {"Cookie": "pipeline_dashboard=99999999999." + "0" * 64},
    ],
)
def test_no_or_wrong_credential_is_401_json(client: TestClient, headers: dict[str, str]) -> None:
    for path in ("/dashboard/api/statuses", "/dashboard/api/lag", "/dashboard/api/dead-letters"):
        r = client.get(path, headers=headers)
        assert r.status_code == 401
        assert r.json()["detail"] == "dashboard token missing or wrong"
    page = client.get("/dashboard/", headers=headers, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"


def test_never_from_the_address(client: TestClient) -> None:
    for token in (TOKEN, API_TOKEN):
        page = client.get("/dashboard/", params={"token": token}, follow_redirects=False)
        assert page.status_code == 303, token
        assert client.get("/dashboard/api/statuses", params={"token": token}).status_code == 401


@pytest.mark.parametrize("token", [TOKEN, API_TOKEN])
def test_login_sets_an_httponly_strict_cookie_that_opens_the_page(
    client: TestClient, token: str
) -> None:
    form = client.get("/dashboard/login")
    assert form.status_code == 200 and 'name="token"' in form.text
    r = login(client, token)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/"
    cookie = r.headers["set-cookie"]
    assert token not in cookie
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/dashboard"} <= flags
    page = client.get("/dashboard/", follow_redirects=False)
    assert page.status_code == 200 and "charts.js" in page.text
    assert client.get("/dashboard/static/dashboard.js").status_code == 200
    out = client.post("/dashboard/logout", follow_redirects=False)
    assert out.status_code == 303 and "max-age=0" in out.headers["set-cookie"].lower()
    client.cookies.clear()
    assert client.get("/dashboard/", follow_redirects=False).status_code == 303


def test_a_wrong_login_is_401_and_sets_nothing(client: TestClient) -> None:
    for token in ("", "nope", TOKEN + "x", TOKEN.upper()):
        r = login(client, token)
        assert r.status_code == 401 and "Wrong token." in r.text, token
        assert "set-cookie" not in r.headers
    as_json = client.post("/dashboard/login", json={"token": TOKEN}, follow_redirects=False)
    assert as_json.status_code == 401  # the form only


def test_a_session_ends_with_its_token() -> None:
    """A cookie is an HMAC keyed by its token: rotated out, the token's sessions end too."""
    with TestClient(create_app(with_tokens("", API_TOKEN, "old"), MemoryWriter())) as c:
        assert login(c, "old").status_code == 303
        cookie = c.cookies.get("pipeline_dashboard")
    assert cookie
    with TestClient(create_app(with_tokens("", API_TOKEN), MemoryWriter())) as c:
        r = c.get("/dashboard/api/lag", headers={"Cookie": f"pipeline_dashboard={cookie}"})
        assert r.status_code == 401


def test_session_cookies_expire_and_cannot_be_forged() -> None:
    tokens = Tokens(["t1", "t2"])
    key = tokens.match("t2")
    assert key is not None
    value, max_age = session.issue(key, 1.0, now=1000.0)
    assert max_age == 3600
    assert session.valid(tokens, value, now=1000.0 + 3599)
    assert not session.valid(tokens, value, now=1000.0 + 3600)
    stamp, _, mac = value.partition(".")
    assert not session.valid(tokens, f"{int(stamp) + 10**6}.{mac}", now=1000.0)
    assert not session.valid(Tokens(["t1"]), value, now=1000.0)
    assert not session.valid(tokens, "", now=1000.0)


def test_lag_rows_count_uncommitted_partitions_whole() -> None:
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    rows = lag_rows("g", ["a"], {a0: 7}, {a0: 10, a1: 4, b0: 99})
    assert rows == [
        {"group": "g", "topic": "a", "partition": 0, "committed": 7, "end": 10, "lag": 3},
        {"group": "g", "topic": "a", "partition": 1, "committed": None, "end": 4, "lag": 4},
    ]
    assert lag_rows("g", ["a"], {a0: -1}, {a0: 2})[0]["lag"] == 2


def test_metrics_count_a_webhook_by_provider_code_and_size(client: TestClient) -> None:
    def sample(text: str, name: str, **labels: str) -> float:
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == name and labels.items() <= s.labels.items()
        )

    assert client.get("/metrics").status_code == 404  # only on the internal metrics port
    before = generate_latest().decode()
    ev = SampleEvent(
        "btcpay", "p-1", "pending", Decimal("1.5"), "BTC", datetime.now(UTC), "e-1", "o-1"
    )
    body, headers = signed_request(ev, unit_settings().providers, time.time())
    assert client.post("/webhooks/btcpay", content=body, headers=headers).status_code == 202
    headers["btcpay-sig"] = "sha256=" + "0" * 64
    assert client.post("/webhooks/btcpay", content=body, headers=headers).status_code == 401
    after = generate_latest().decode()
    requests = "pipeline_ingest_requests_total"
    for code in ("202", "401"):
        got = sample(after, requests, provider="btcpay", code=code)
        assert got - sample(before, requests, provider="btcpay", code=code) == 1
    failures = "pipeline_ingest_verification_failures_total"
    got = sample(after, failures, provider="btcpay", reason="bad signature")
    assert got - sample(before, failures, provider="btcpay", reason="bad signature") == 1
    size = "pipeline_ingest_body_bytes_sum"
    got = sample(after, size, provider="btcpay")
    assert got - sample(before, size, provider="btcpay") == 2 * len(body)
