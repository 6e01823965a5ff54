"""Issue 12 on the real stack: the merchant API's token (401, rotation), JSON only (415), a
slow-header client cut off, /metrics off the public port, the dashboard's cookie login, and
NOWPayments' number forms as one payment and one event."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import threading
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from ingest.verify.nowpayments import js_form
from pipeline.settings import Settings
from stack import launcher
from tests.integration.waiting import drained, eventually, pipeline_groups

CHECKOUT = {"provider": "btcpay", "order_id": "o-sec", "amount": "12.50", "currency": "USDC"}


def checkout(external_id: str) -> dict[str, str]:
    return {**CHECKOUT, "external_id": external_id}


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer wrong-token", "Basic x"])
async def test_merchant_api_without_or_with_a_wrong_token_is_401(
    stack: launcher.StackInfo,
    api: httpx.AsyncClient,
    pg: asyncpg.Pool,
    settings: Settings,
    authorization: str | None,
) -> None:
    ext = f"sec-401-{uuid.uuid4().hex[:8]}"
    headers = {"authorization": authorization} if authorization else {}
    for r in (
        await api.post("/checkouts", json=checkout(ext), headers=headers, auth=None),
        await api.get(f"/transactions/btcpay/{ext}", headers=headers, auth=None),
    ):
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/json") and r.json()["detail"]
    # had anything been written, it would be in Postgres once every consumer has caught up
    await drained(stack.kafka_bootstrap, pipeline_groups(settings.topics))
    assert await pg.fetchval("SELECT count(*) FROM transactions WHERE external_id = $1", ext) == 0


async def test_both_tokens_of_a_rotation_work(
    api: httpx.AsyncClient, pg: asyncpg.Pool, settings: Settings
) -> None:
    tokens = [t.get_secret_value() for t in settings.api.tokens]
    assert len(tokens) >= 2, "config/local.toml ships a current and a rotated API token"
    for i, token in enumerate(tokens):
        ext = f"sec-rot-{i}-{uuid.uuid4().hex[:8]}"
        auth = {"authorization": f"Bearer {token}"}
        r = await api.post("/checkouts", json=checkout(ext), headers=auth)
        assert r.status_code == 202, r.text

        async def status(ext: str = ext) -> str | None:
            return await pg.fetchval("SELECT status FROM transactions WHERE external_id = $1", ext)

        await eventually(status, lambda s: s == "new", what=f"checkout {i} registered")
        got = await api.get(f"/transactions/btcpay/{ext}", headers=auth)
        assert got.status_code == 200 and got.json()["status"] == "new"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_checkouts_in_another_media_type_are_415(
    api: httpx.AsyncClient, content_type: str
) -> None:
    """What a cross-site page can send without a preflight, with a valid token even."""
    body = b'{"provider":"btcpay","external_id":"x","order_id":"o","amount":"1","currency":"BTC"}'
    r = await api.post("/checkouts", content=body, headers={"content-type": content_type})
    assert r.status_code == 415 and "application/json" in r.json()["detail"]


def _held_open(
    port: int, opening: bytes, trickle: bool, limit: float, opened: threading.Event
) -> float:
    """Seconds until the server closed a connection that never completes its headers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    started = time.monotonic()
    opened.set()
    try:
        if opening:
            sock.sendall(opening)
        sock.settimeout(0.5)
        while time.monotonic() - started < limit:
            try:
                if trickle:
                    sock.sendall(b"X-Slow: 1\r\n")
                if sock.recv(4096) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:  # reset or broken pipe: closed
                break
        return time.monotonic() - started
    finally:
        sock.close()


async def test_slow_header_clients_are_disconnected_within_10_s(
    stack: launcher.StackInfo, api: httpx.AsyncClient, settings: Settings
) -> None:
    port = int(stack.ingest_url.rsplit(":", 1)[1])
    limit = settings.ingest.header_timeout_s
    assert limit <= 10
    cases = {
        "silent": b"",
        "partial headers": b"POST /webhooks/coinbase HTTP/1.1\r\nHost: ingest\r\n",
        "a header line every 0.5 s": b"POST /checkouts HTTP/1.1\r\n",
    }
    results: dict[str, float] = {}
    opened = {name: threading.Event() for name in cases}

    def run(name: str, opening: bytes) -> None:
        results[name] = _held_open(port, opening, "every" in name, limit + 10, opened[name])

    threads = [threading.Thread(target=run, args=item) for item in cases.items()]
    for t in threads:
        t.start()
    for event in opened.values():
        assert await asyncio.to_thread(event.wait, 10), "a slow connection never opened"
    health = await api.get("/health")  # others are served while the slow ones hang
    assert health.status_code == 200 and health.json()["status"] == "alive", health.text
    for t in threads:
        await asyncio.to_thread(t.join)
    for name, held in results.items():
        assert limit - 1 <= held <= limit + 2, f"{name}: closed after {held:.1f} s"


async def test_metrics_are_not_on_the_public_port(stack: launcher.StackInfo) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        public = await client.get(f"{stack.ingest_url}/metrics")
        assert public.status_code == 404 and "pipeline_ingest" not in public.text
        internal = await client.get(f"http://127.0.0.1:{stack.parts['ingest'].port2}/metrics")
        assert internal.status_code == 200 and "pipeline_ingest_requests_total" in internal.text


async def test_dashboard_login_sets_a_strict_httponly_cookie_never_a_url_token(
    stack: launcher.StackInfo, settings: Settings
) -> None:
    token = settings.api.tokens[0].get_secret_value()
    async with httpx.AsyncClient(base_url=stack.dashboard_url, timeout=10) as browser:
        url_token = await browser.get("/dashboard/api/statuses", params={"token": token})
        assert url_token.status_code == 401
        page = await browser.get("/dashboard/", params={"token": token}, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"
        form = await browser.get("/dashboard/login")
        assert form.status_code == 200 and 'action="/dashboard/login"' in form.text
        wrong = await browser.post("/dashboard/login", data={"token": "nope"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        r = await browser.post("/dashboard/login", data={"token": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard/"
        cookie = r.headers["set-cookie"]
        flags = {f.strip().lower() for f in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/dashboard"} <= flags, cookie
        assert token not in cookie
        statuses = await browser.get("/dashboard/api/statuses")
        assert statuses.status_code == 200 and "by_status" in statuses.json(), statuses.text
        opened = await browser.get("/dashboard/", follow_redirects=False)
        assert opened.status_code == 200 and "charts.js" in opened.text
        # the session is for the dashboard only: sent to the merchant API on ingest anyway
        # (by hand: its Path keeps a browser from it), it opens nothing there
        session = {"cookie": f"pipeline_dashboard={browser.cookies['pipeline_dashboard']}"}
        merchant = await browser.get(f"{stack.ingest_url}/transactions/btcpay/x", headers=session)
        assert merchant.status_code == 401 and merchant.json()["detail"], merchant.text


async def test_nowpayments_number_forms_are_one_payment_and_one_event(
    api: httpx.AsyncClient, pg: asyncpg.Pool, ch: Any, settings: Settings
) -> None:
    """1234, 1234.0 and 1.234e3 under one signature (NOWPayments signs the JavaScript
    re-serialization, where all three are 1234): one payment, one event, two duplicates."""
    pid = int(time.time() * 1000) % 10**12
    updated = int(time.time() * 1000)
    forms = (
        (f"{pid}", f"{updated}", "12.5"),
        (f"{pid}.0", f"{updated}.0", "12.50"),
        (f"{pid / 10**11!r}e11", f"{updated / 10**12!r}e12", "1.25e1"),
    )
    bodies = [
        (
            f'{{"payment_id":{p},"payment_status":"finished","price_amount":{a},'
            f'"price_currency":"usd","order_id":"o-np","updated_at":{u}}}'
        ).encode()
        for p, u, a in forms
    ]
    assert len({js_form(b) for b in bodies}) == 1, "the three forms must sign alike"
    secret = settings.providers.nowpayments.secrets[0].get_secret_value().encode()
    sig = hmac.new(secret, js_form(bodies[0]), hashlib.sha512).hexdigest()
    for body in bodies:
        r = await api.post(
            "/webhooks/nowpayments",
            content=body,
            headers={"content-type": "application/json", "x-nowpayments-sig": sig},
        )
        assert r.status_code == 202, r.text

    async def rows() -> list[tuple[str, str]]:
        got = await pg.fetch(
            "SELECT external_id, status FROM transactions WHERE provider = 'nowpayments' "
            "AND external_id LIKE $1",
            f"{pid}%",
        )
        return [(r["external_id"], r["status"]) for r in got]

    await eventually(rows, lambda r: r == [(str(pid), "completed")], what="one payment")

    def events() -> list[tuple[Any, ...]]:
        q = ch.query(
            "SELECT event_id, external_id FROM payment_events FINAL "
            "WHERE provider = 'nowpayments' AND startsWith(external_id, {p:String})",
            parameters={"p": str(pid)},
        )
        return [tuple(r) for r in q.result_rows]

    want = [(f"nowpayments:{pid}:finished:{updated}", str(pid))]
    await eventually(lambda: asyncio.to_thread(events), lambda e: e == want, what="one event")
    tx = (await api.get(f"/transactions/nowpayments/{pid}")).json()
    assert len(tx["events"]) == 1 and tx["status"] == "completed"
