"""Attacks on the web surface of the real stack: cross-origin requests, the dashboard (its own
part, DASHBOARD_URL) without its token, injection in path, query and headers (SQL, ClickHouse,
traversal, CRLF, very long segments). Never a 5xx, never another payment's data, the tables
intact afterwards.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import clickhouse_connect
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.settings import Settings
from stack.launcher import StackInfo
from testing.webhooks import signed_request
from tests.auth import api_token
from tests.chaos.hostile import sample
from tests.chaos.inprocess import serve, stack_settings
from tests.chaos.probes import (
    TALLY,
    check_answer,
    healthy,
    landed,
    pg_fetch,
    remember,
    row,
    sized,
    wait_for,
)

# -- CORS ----------------------------------------------------------------------------------------

SHOP = "https://shop.example"
UNLISTED = (
    "https://evil.example",
    "null",
    "https://shop.example.evil.example",
    "http://shop.example",
)


def preflight(
    client: httpx.Client, origin: str, path: str = "/webhooks/coinbase"
) -> httpx.Response:
    return client.options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-cc-webhook-signature",
        },
    )


def test_no_origin_is_allowed_when_none_is_configured(http: httpx.Client) -> None:
    for origin in (SHOP, *UNLISTED):
        r = http.get("/health", headers={"origin": origin})
        check_answer(r, {200})
        assert "access-control-allow-origin" not in r.headers
        p = preflight(http, origin)
        check_answer(p, {204, 400, 404, 405}, f"preflight from {origin}")
        assert "access-control-allow-origin" not in p.headers, p.headers


def test_only_listed_origins_get_cors_headers(settings: Settings, stack: StackInfo) -> None:
    with (
        serve(stack_settings(settings, stack, cors_origins=[SHOP])) as url,
        httpx.Client(base_url=url, timeout=15) as client,
    ):
        allowed = preflight(client, SHOP)
        check_answer(allowed, {204})
        assert allowed.headers["access-control-allow-origin"] == SHOP
        assert (
            client.get("/health", headers={"origin": SHOP}).headers["access-control-allow-origin"]
            == SHOP
        )
        for origin in UNLISTED:
            simple = client.get("/health", headers={"origin": origin})
            check_answer(simple, {200})
            assert "access-control-allow-origin" not in simple.headers, origin
            refused = preflight(client, origin)
            check_answer(refused, {400}, f"preflight from {origin}")
            assert "access-control-allow-origin" not in refused.headers, origin
            assert "CORS" in refused.json()["detail"]


# -- the dashboard -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dash_http(stack: StackInfo) -> Iterator[httpx.Client]:
    """The dashboard part's client, no credential; the part must still be healthy after."""
    with httpx.Client(base_url=stack.dashboard_url, timeout=30) as client:
        yield client
        healthy(client)


DASHBOARD = (
    "/dashboard/",
    "/dashboard/api/statuses",
    "/dashboard/api/throughput",
    "/dashboard/api/latency",
    "/dashboard/api/lag",
    "/dashboard/api/dead-letters",
)


def test_the_dashboard_needs_its_token(dash_http: httpx.Client, settings: Settings) -> None:
    """Any API token or the dashboard token, as a bearer header (or the login's cookie, see
    tests/integration/test_api_security.py); never from the address."""
    for token in (settings.dashboard.token.get_secret_value(), api_token(settings)):
        wrong = (
            {},
            {"authorization": "Bearer"},
            {"authorization": "Bearer wrong"},
            {"authorization": f"Bearer {token.upper()}"},
            {"authorization": f"Bearer {token}x"},
            {"authorization": f"Bearer {token[:-1]}"},
            {"authorization": f"Basic {base64.b64encode(token.encode()).decode()}"},
            {"authorization": token},
            {"cookie": f"token={token}"},
            {"cookie": f"pipeline_dashboard={token}"},
        )
        for path in DASHBOARD:
            for headers in wrong:
                r = dash_http.get(path, headers=headers, follow_redirects=False)
                if path == "/dashboard/":  # the page sends a browser to its login form
                    TALLY.case()
                    assert r.status_code == 303, (headers, r.text[:200])
                    assert r.headers["location"] == "/dashboard/login"
                    continue
                check_answer(r, {401}, f"{path} {list(headers)}")
                assert r.headers.get("www-authenticate", "").startswith("Bearer")
            for value in ("wrong", token):
                r = dash_http.get(path, params={"token": value}, follow_redirects=False)
                if path == "/dashboard/":
                    assert r.status_code == 303, value
                else:
                    check_answer(r, {401}, f"{path}?token=")
            ok = dash_http.get(path, headers={"authorization": f"Bearer {token}"})
            check_answer(ok, {200, 503}, f"{path} with the token")


# -- injection -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def known_payment(http: httpx.Client, stack: StackInfo, settings: Settings) -> dict[str, Any]:
    """One real payment, whose data no injected request may ever see."""
    ev = sample("standard", f"victim-{uuid.uuid4().hex[:10]}", "completed")
    body, headers = remember(*signed_request(ev, settings.providers))
    check_answer(http.post("/webhooks/standard", content=body, headers=headers), {202})
    return {"id": ev.external_id, "row": landed(stack.postgres_dsn, "standard", ev.external_id)}


def injections(victim: str) -> list[str]:
    return [
        f"{victim}' OR '1'='1",
        f"{victim}'--",
        f"{victim}' ; DROP TABLE transactions; --",
        f"{victim}%",
        f"{victim[:-1]}_",
        "' OR 1=1 --",
        "%",
        "*",
        f"{victim}\x00",
        f"{victim}\r\nSet-Cookie: a=1",
        f"../{victim}",
        "../../../../etc/passwd",
        f"{victim}' UNION SELECT * FROM transactions --",
        "1) OR (1=1",
        f"{victim} OR 1=1",
        "' OR sleep(5) --",
        "'; SELECT * FROM system.tables; --",
        "\ud800",
        "\u202e" + victim,
        "x" * 60_000,
    ]


def get_path(http: httpx.Client, *segments: str) -> httpx.Response:
    return http.get("/" + "/".join(quote(s, safe="", errors="surrogatepass") for s in segments))


def test_injection_in_transaction_paths_sees_no_other_payment(
    http: httpx.Client, known_payment: dict[str, Any], stack: StackInfo
) -> None:
    victim = known_payment["id"]
    check_answer(get_path(http, "transactions", "standard", victim), {200}, "the victim itself")
    for attempt in injections(victim):
        for provider in ("standard", "standard' OR '1'='1", "standard%", "../standard"):
            r = get_path(http, "transactions", provider, attempt)
            check_answer(r, {400, 404}, repr(attempt[:40]))
            assert victim not in r.text, f"victim's data leaked for {attempt[:60]!r}"
        r = get_path(http, "webhooks", attempt)
        check_answer(r, {400, 404, 405}, repr(attempt[:40]))
    assert row(stack.postgres_dsn, "standard", victim) == known_payment["row"]


@sized(ci=60, full=1000)
@given(provider=st.text(max_size=30), external_id=st.text(min_size=1, max_size=300))
def test_any_path_parameter_is_answered_as_documented(
    provider: str, external_id: str, http: httpx.Client, known_payment: dict[str, Any]
) -> None:
    r = get_path(http, "transactions", provider or "standard", external_id)
    check_answer(r, {200, 400, 404} if external_id == known_payment["id"] else {400, 404})


@sized(ci=40, full=600)
@given(
    path=st.sampled_from(["/dashboard/api/throughput", "/dashboard/api/latency"]),
    value=st.one_of(
        st.sampled_from(
            [
                "1; DROP TABLE payment_events",
                "1 OR 1=1",
                "60) UNION SELECT * FROM system.users --",
                "-1",
                "0",
                "1e3",
                "99999999999999999999",
                "\x00",
                "1441",
            ]
        ),
        st.text(max_size=40),
    ),
    name=st.sampled_from(["minutes", "limit", "minutes[]", "MINUTES"]),
)
def test_injection_in_dashboard_queries_is_refused(
    path: str, value: str, name: str, dash_http: httpx.Client, settings: Settings
) -> None:
    token = settings.dashboard.token.get_secret_value()
    r = dash_http.get(path, params={name: value}, headers={"authorization": f"Bearer {token}"})
    check_answer(r, {200, 400, 503}, f"{name}={value[:30]!r}")
    if r.status_code == 200:  # a lenient number ("1e3") or an ignored name: plain data back
        assert isinstance(r.json(), dict)


def raw_request(stack: StackInfo, head: bytes, url: str = "") -> bytes:
    """``head`` sent as is to ingest (or to ``url``); the whole answer."""
    import socket

    port = int((url or stack.ingest_url).rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize(
    "value",
    [
        b"abc\r\nSet-Cookie: pwned=1",
        b"abc%0d%0aSet-Cookie:%20pwned=1",
        b"\xff\xfe\xfd",
        b"\xc0\xaf",
        b"x" * 10_000,
        b"../../etc/passwd",
        b"' OR 1=1 --",
    ],
)
def test_request_ids_cannot_inject_headers(value: bytes, stack: StackInfo) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: i\r\nX-Request-ID: %s\r\nConnection: close\r\n\r\n"
    answer = raw_request(stack, head % value)
    TALLY.case()
    head, _, _ = answer.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    assert status in (b"200", b"400"), answer[:300]
    assert b"set-cookie" not in head.lower() and b"pwned" not in head, head
    echoed = [line for line in head.split(b"\r\n") if line.lower().startswith(b"x-request-id:")]
    for line in echoed:
        rid = line.split(b":", 1)[1].strip()
        assert rid == b"abc" or (len(rid) == 32 and rid.isalnum()), line


def test_static_files_cannot_be_traversed(stack: StackInfo) -> None:
    for path in (
        b"/dashboard/static/../../../../etc/passwd",
        b"/dashboard/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
        b"/dashboard/static/%2e%2e/%2e%2e/routes.py",
        b"/dashboard/static/....//....//config/local.toml",
    ):
        head = b"GET %s HTTP/1.1\r\nHost: i\r\nConnection: close\r\n\r\n" % path
        answer = raw_request(stack, head, stack.dashboard_url)
        TALLY.case()
        assert answer.split(b" ", 2)[1] in (b"400", b"404"), answer[:300]
        assert b"root:" not in answer and b"secrets" not in answer and b"import" not in answer


def test_tables_are_intact_afterwards(
    stack: StackInfo, known_payment: dict[str, Any], ch: clickhouse_connect.driver.Client
) -> None:
    tables = pg_fetch(
        stack.postgres_dsn,
        "SELECT to_regclass('transactions') AS t, to_regclass('transaction_events') AS e, "
        "to_regclass('checkouts') AS c, (SELECT count(*) FROM transactions) AS n",
    )[0]
    assert all(tables[k] is not None for k in ("t", "e", "c")) and tables["n"] >= 1
    assert row(stack.postgres_dsn, "standard", known_payment["id"]) == known_payment["row"]
    for table in ("payment_events", "dead_letters", "ingest_log"):
        assert ch.command(f"EXISTS TABLE {table}") == 1, table
    victim = known_payment["id"]  # this module's own payment, not another test's rows
    sql = f"SELECT count() FROM payment_events WHERE external_id = '{victim}'"  # a uuid hex id
    wait_for(lambda: int(ch.command(sql)), lambda n: n >= 1, 30, "the victim's event in ClickHouse")
