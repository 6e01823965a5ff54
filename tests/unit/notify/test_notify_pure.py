"""The notifier's pure parts: which deliveries a transition makes, their ids and bodies, the
signatures (checked with the official ``standardwebhooks``), the schedule and the verdicts."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from notify.dispatch import decide
from notify.errors import BadTransition
from notify.http import Answer
from notify.message import Endpoint, deliveries, parse, webhook_id
from notify.outbox import Claimed
from notify.schedule import Schedule, Verdict, verdict
from notify.sign import Signer
from pipeline.settings import NotifyEndpoint

S1 = "whsec_" + base64.b64encode(b"first-secret").decode()
S2 = "whsec_" + base64.b64encode(b"second-secret").decode()

T = {
    "event_id": "coinbase:e-1", "status": "completed", "provider_status": "charge:confirmed",
    "applied": True, "note": "",
    "provider": "coinbase", "external_id": "ch_1", "from_status": "pending",
    "to_status": "completed", "version": 3, "occurred_at": "2026-11-01T10:05:00Z",
    "payment_amount": "12.50", "payment_currency": "USDC", "order_id": "o-1",
    "outcome": "applied", "processed_at_ms": 1,
}  # fmt: skip


def ep(url: str, statuses: list[str] | None = None) -> Endpoint:
    return Endpoint(url, (S1,), None if statuses is None else frozenset(statuses))


def test_one_delivery_per_wanting_endpoint_with_the_contract_body() -> None:
    a, b, c = ep("http://a/h"), ep("http://b/h", ["completed"]), ep("http://c/h", ["failed"])
    ds = deliveries(parse(orjson.dumps(T)), [a, b, c], 1234)
    assert [d.endpoint for d in ds] == ["http://a/h", "http://b/h"]
    assert orjson.loads(ds[0].body) == {
        "type": "payment.completed",
        "timestamp": "2026-11-01T10:05:00Z",
        "data": {
            "provider": "coinbase", "external_id": "ch_1", "status": "completed",
            "previous_status": "pending", "version": 3, "amount": "12.50",
            "currency": "USDC", "order_id": "o-1",
        },
    }  # fmt: skip
    assert ds[0].webhook_id == webhook_id("coinbase", "ch_1", 3, "http://a/h") != ds[1].webhook_id


def test_a_re_sent_transition_makes_the_same_delivery_byte_for_byte() -> None:
    again = {**T, "outcome": "duplicate", "processed_at_ms": 99, "delivery_id": "other"}
    first = deliveries(parse(orjson.dumps(T)), [ep("http://a/h")])
    assert first and first == deliveries(parse(orjson.dumps(again)), [ep("http://a/h")])


def test_no_status_change_no_notification() -> None:
    same = parse(orjson.dumps({**T, "from_status": "completed"}))
    assert deliveries(same, [ep("http://a/h")]) == []


@pytest.mark.parametrize(
    "bad", [b"not json", b"[]", orjson.dumps({**T, "version": "3"}), orjson.dumps({"x": 1})]
)
def test_an_unreadable_transition_is_refused(bad: bytes) -> None:
    with pytest.raises(BadTransition):
        parse(bad)


def test_one_signature_per_secret_each_verifies_with_standardwebhooks() -> None:
    body = b'{"type":"payment.completed"}'
    now = int(datetime.now(UTC).timestamp())
    headers = Signer([S1, S2]).headers("msg_1", now, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (S1, S2):
        assert Webhook(secret).verify(body, headers) == {"type": "payment.completed"}
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + base64.b64encode(b"other").decode()).verify(body, headers)


def test_the_schedule_retries_within_10_s_grows_to_hours_and_gives_up_after_3_days() -> None:
    s = Schedule()
    assert s.delay(1, lambda: 0.0) >= 4 and s.delay(1, lambda: 1.0) <= 10
    waits = [s.delay(n, lambda: 1.0) for n in range(1, 30)]
    assert waits == sorted(waits) and waits[-1] == 6 * 3600
    age, n = 0.0, 0
    while (w := s.next_try(age, n + 1, lambda: 1.0)) is not None:
        age, n = age + w, n + 1
    assert 3 * 24 * 3600 - 6 * 3600 < age <= 3 * 24 * 3600 and 10 < n < 30


@pytest.mark.parametrize(
    ("code", "want"),
    [(200, Verdict.DELIVERED), (204, Verdict.DELIVERED), (None, Verdict.RETRY),
     (500, Verdict.RETRY), (503, Verdict.RETRY), (429, Verdict.RETRY), (301, Verdict.RETRY),
     (400, Verdict.PERMANENT), (404, Verdict.PERMANENT), (410, Verdict.PERMANENT)],
)  # fmt: skip
def test_verdicts(code: int | None, want: Verdict) -> None:
    assert verdict(code) is want


def claimed(attempts: int, age_s: float) -> Claimed:
    return Claimed("msg_1", "http://a/h", "p", "e", 1, "completed", b"{}", attempts, age_s, age_s)


def test_decide() -> None:
    s = Schedule()
    assert decide(claimed(0, 0), Answer(200, None, 0.1), s).state == "delivered"
    gone = decide(claimed(0, 0), Answer(410, "HTTP 410", 0.1), s)
    assert gone.state == "dead" and gone.error is not None and "410" in gone.error
    retry = decide(claimed(0, 0), Answer(None, "timeout", 10), s, lambda: 0.5)
    assert retry.state == "pending" and retry.wait_s == 6.0
    late = decide(claimed(19, 3 * 24 * 3600 - 60), Answer(503, "HTTP 503", 0.1), s)
    assert late.state == "dead" and late.error is not None and "gave up after 20" in late.error


@pytest.mark.parametrize(
    "bad",
    [{"url": "ftp://x", "secrets": [S1]}, {"url": "http://x/h", "secrets": []},
     {"url": "http://x/h", "secrets": ["plain"]}, {"url": "http://x/h", "secrets": ["whsec_%%"]},
     {"url": "http://x/h", "secrets": [S1], "statuses": ["paid"]}],
)  # fmt: skip
def test_endpoint_config_is_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        NotifyEndpoint.model_validate(bad)
