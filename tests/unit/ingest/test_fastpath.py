"""The raw webhook route (decision 0016) answers exactly as the Litestar handler it stands in
front of: the same requests through both ways in give the same status, headers and body."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from litestar.testing import TestClient

from ingest import fastpath
from ingest.app import create_app
from ingest.writer import MemoryWriter
from pipeline.settings import Settings
from testing.webhooks import SampleEvent, signed_request
from tests.explicit_settings import unit_settings

ORIGIN = "https://shop.example"


@pytest.fixture
def settings() -> Settings:
    cfg = unit_settings()
    ingest = cfg.ingest.model_copy(update={"cors_origins": [ORIGIN]})
    return cfg.model_copy(update={"ingest": ingest})


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The providers whose requests the raw route served."""
    seen: list[str] = []
    original = fastpath.WebhookRoute.__call__

    async def spy(self: fastpath.WebhookRoute, scope, receive, send, provider):  # type: ignore[no-untyped-def]
        seen.append(provider)
        await original(self, scope, receive, send, provider)

    monkeypatch.setattr(fastpath.WebhookRoute, "__call__", spy)
    return seen


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(create_app(settings, MemoryWriter())) as c:
        yield c


def cases(settings: Settings) -> list[tuple[str, bytes, dict[str, str]]]:
    now = time.time()
    out = []
    for p in ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard", "jwt"):
        ev = SampleEvent(
            p, "pay-1", "pending", Decimal("1.5"), "USDC", datetime.now(UTC), "evt-1", "o-1"
        )
        body, headers = signed_request(ev, settings.providers, now)
        out += [
            (p, body.replace(b"1.5", b"9.5"), headers),  # tampered
            (p, body, {"content-type": headers.get("content-type", "application/json")}),
            (p, body, {**headers, "content-type": "text/html"}),
        ]
    secret = settings.providers.coinbase.secrets[0].get_secret_value().encode()
    for body in (b"[1]", b'{"a": 1'):  # authentic, unreadable: dead letter
        sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
        out.append(("coinbase", body, {"x-cc-webhook-signature": sig}))
    out += [
        ("coinbase", b"", {}),
        ("coinbase", b"x" * (settings.ingest.max_body_bytes + 1), {}),
        ("nowpayments", b"[" * 3000, {"x-nowpayments-sig": "ab"}),
    ]
    return out


def answer(r: object) -> tuple[int, dict[str, str], str]:
    headers = {
        k: v
        for k, v in r.headers.items()  # type: ignore[attr-defined]
        if k not in ("x-request-id", "date", "vary") and not k.startswith("access-control")
    }
    text: str = r.text  # type: ignore[attr-defined]
    for word in text.replace('"', " ").replace(":", " ").split():
        if len(word) == 32 and all(c in "0123456789abcdef" for c in word):
            text = text.replace(word, "<id>")  # the raw record's id differs, of course
    return r.status_code, headers, text  # type: ignore[attr-defined]


def test_both_ways_in_answer_alike(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    served: list[str],
) -> None:
    for provider, body, headers in cases(settings):
        fast = client.post(f"/webhooks/{provider}", content=body, headers=headers)
        assert served and served.pop() == provider  # the raw route took it
        slow = client.post(
            f"/webhooks/{provider}", content=body, headers={**headers, "origin": ORIGIN}
        )
        assert not served  # an Origin under CORS: Litestar's handler took it
        assert answer(fast) == answer(slow), (provider, body[:40])
        assert fast.headers["x-request-id"]
        assert fast.json()["detail"]


def test_both_ways_in_echo_a_safe_request_id_and_replace_any_other(
    client: TestClient,  # type: ignore[type-arg]
    served: list[str],
) -> None:
    for given, echoed in (("trace-42.a_b", True), ("bad id", False), ("x" * 65, False)):
        for extra in ({}, {"origin": ORIGIN}):  # the raw route, then Litestar's handler
            r = client.post(
                "/webhooks/coinbase", content=b"{}", headers={"x-request-id": given, **extra}
            )
            rid = r.headers["x-request-id"]
            assert (rid == given) if echoed else (rid != given and len(rid) == 32), (given, extra)
    assert len(served) == 3


def test_unknown_providers_and_other_methods_stay_with_litestar(
    client: TestClient,  # type: ignore[type-arg]
    served: list[str],
) -> None:
    assert client.post("/webhooks/paypal", content=b"{}").status_code == 404
    assert client.post("/webhooks/coinbase/extra", content=b"{}").status_code == 404
    assert client.get("/webhooks/coinbase").status_code == 405
    assert served == []


def test_overload_is_answered_503_at_once_before_any_check(settings: Settings) -> None:
    shedding = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"max_inflight": 0})}
    )
    writer = MemoryWriter()
    with TestClient(create_app(shedding, writer)) as c:
        r = c.post("/webhooks/coinbase", content=b'{"a": 1}')
    assert r.status_code == 503
    assert r.json()["detail"] == "overloaded, retry later"
    assert int(r.headers["retry-after"]) > 0
    assert writer.raw == [] and writer.dead == []


def test_an_invalid_content_length_is_400_in_json(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    r = client.post("/webhooks/coinbase", content=b"{}", headers={"content-length": "x"})
    assert r.status_code == 400
    assert "content-length" in r.json()["detail"].lower()


# ---- the body's deadline: a timer only for a receive that waits ------------------------------


def _route(timeout_s: float) -> fastpath.WebhookRoute:
    return fastpath.WebhookRoute(None, 1000, timeout_s, cors=False)  # type: ignore[arg-type]


async def test_a_body_that_came_with_its_headers_is_read_without_a_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_timer(deadline: float) -> None:
        raise AssertionError("a timer was set for a body that was there")

    monkeypatch.setattr(fastpath.asyncio, "timeout_at", no_timer)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b'{"a":1}', "more_body": False}

    assert await _route(5)._body(receive, None) == b'{"a":1}'


async def test_a_body_in_parts_that_wait_is_read_whole() -> None:
    parts = [b'{"a":', b"1}"]

    async def receive() -> dict[str, object]:
        await asyncio.sleep(0.01)
        body = parts.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(parts)}

    assert await _route(5)._body(receive, None) == b'{"a":1}'


async def test_a_body_that_does_not_come_is_408_by_the_deadline() -> None:
    async def receive() -> dict[str, object]:
        await asyncio.sleep(0.01)
        return {"type": "http.request", "body": b"{", "more_body": True}

    started = time.monotonic()
    answer = await _route(0.2)._body(receive, None)
    assert isinstance(answer, fastpath.Answer) and answer.status == 408
    assert 0.2 <= time.monotonic() - started < 1.5  # one deadline for the whole body
