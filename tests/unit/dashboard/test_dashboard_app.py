"""The dashboard app's access rules (login, cookie, token, never from the address), its
answers when a data source is down, and the lag arithmetic, without any service running."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiokafka import TopicPartition
from httpx import Response
from litestar.testing import TestClient
from pydantic import SecretStr

from dashboard import session
from dashboard.app import create_app
from dashboard.lag import lag_rows
from ingest.auth import Tokens
from pipeline.settings import ApiSettings, DashboardSettings, Settings
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
    with TestClient(create_app(with_tokens(TOKEN, API_TOKEN))) as c:
        yield c


def login(client: TestClient, token: str) -> Response:
    return client.post("/dashboard/login", data={"token": token}, follow_redirects=False)


def test_no_token_at_all_turns_the_dashboard_off() -> None:
    with TestClient(create_app(with_tokens(""))) as c:
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
    with TestClient(create_app(with_tokens("", API_TOKEN, "old"))) as c:
        assert login(c, "old").status_code == 303
        cookie = c.cookies.get("pipeline_dashboard")
    assert cookie
    with TestClient(create_app(with_tokens("", API_TOKEN))) as c:
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
