"""What the hostile-input and attack suites share: their size, the session's tally of cases,
the check every answer must pass, and signing of arbitrary bodies with the configured secrets.

Size: CHAOS_FULL unset (``make test``, CI) runs a short subset; ``CHAOS_FULL=1`` (``make
chaos``) runs the full size, over 10,000 generated cases in all. Both are Hypothesis profiles.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
from hypothesis import HealthCheck, settings

from ingest.verify.nowpayments import canonical_forms
from pipeline.settings import ProviderSettings

FULL = os.environ.get("CHAOS_FULL", "") not in ("", "0")
REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / ".run" / "chaos-inputs.json"
T = TypeVar("T")

settings.register_profile(
    "chaos",
    max_examples=20,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("chaos-full", settings.get_profile("chaos"), max_examples=500)
PROFILE = settings.get_profile("chaos-full" if FULL else "chaos")

#: what ingest may answer at all; everything else (and any 5xx but 503) is a finding
DOCUMENTED = frozenset({200, 202, 204, 400, 401, 404, 405, 408, 413, 415, 503})


def sized(ci: int, full: int) -> settings:
    """Hypothesis settings of the loaded profile with this test's number of examples."""
    return settings(PROFILE, max_examples=full if FULL else ci)


class Tally:
    """Cases tried per test and server errors seen, over the whole session."""

    def __init__(self) -> None:
        self.cases: Counter[str] = Counter()
        self.server_errors: list[str] = []

    def case(self, n: int = 1) -> None:
        self.cases[current_test()] += n

    def report(self) -> dict[str, Any]:
        return {
            "full": FULL,
            "total_cases": sum(self.cases.values()),
            "server_errors_other_than_503": len(self.server_errors),
            "server_error_samples": self.server_errors[:20],
            "cases_per_test": dict(sorted(self.cases.items())),
        }

    def write(self) -> Path:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(self.report(), indent=2) + "\n")
        return REPORT


TALLY = Tally()

#: signed webhook bodies and bearer tokens sent by these suites: no log line may hold them
SENT_BODIES: list[bytes] = []
SENT_TOKENS: list[str] = []


def remember(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """A signed request about to be sent: its body and bearer token go to the log scan."""
    SENT_BODIES.append(body)
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        SENT_TOKENS.append(token)
    return body, headers


def current_test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "outside a test").rsplit(" ", 1)[0]


def check_answer(
    r: httpx.Response, allowed: frozenset[int] | set[int] = DOCUMENTED, what: str = ""
) -> None:
    """One case: counted; never a 5xx other than 503; a documented code; errors JSON with a
    readable ``detail``; an acceptance names the id the raw request was stored under."""
    TALLY.case()
    label = f"{r.request.method} {r.request.url.path[:120]} -> {r.status_code} {what}".strip()
    if r.status_code >= 500 and r.status_code != 503:
        TALLY.server_errors.append(f"{current_test()}: {label}: {r.text[:200]}")
    assert r.status_code in allowed, f"{label}: {r.text[:300]}"
    if r.status_code >= 400:
        assert_error_json(r, label)
    elif r.status_code == 202:
        body = r.json()
        assert body.get("status") == "accepted" and body.get("id"), f"{label}: {body!r}"


def assert_error_json(r: httpx.Response, label: str = "") -> None:
    assert r.headers.get("content-type", "").startswith("application/json"), (
        f"{label}: error is not JSON: {r.headers.get('content-type')!r} {r.text[:200]!r}"
    )
    body = r.json()
    assert isinstance(body, dict), f"{label}: {body!r}"
    detail = body.get("detail")
    assert isinstance(detail, str) and detail.strip(), f"{label}: no readable detail: {body!r}"
    assert detail.isprintable(), f"{label}: detail with control characters: {detail!r}"


def healthy(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "alive"}, r.text


def _secret(providers: ProviderSettings, provider: str) -> bytes:
    secrets: list[Any] = getattr(providers, provider).secrets
    return secrets[0].get_secret_value().encode()  # type: ignore[no-any-return]


def sign(
    provider: str,
    body: bytes,
    providers: ProviderSettings,
    *,
    now: float | None = None,
    msg_id: str | None = None,
    record: bool = True,
) -> dict[str, str]:
    """Correct signature headers for any body (NOWPayments: over its canonical form, so the
    body must be JSON). The body (and JWT) are remembered for the log scan."""
    when = time.time() if now is None else now
    headers: dict[str, str] = {
        "content-type": "application/x-www-form-urlencoded"
        if provider == "coinpayments"
        else "application/json"
    }
    if provider == "coinbase":
        headers["x-cc-webhook-signature"] = _hex(_secret(providers, provider), body, "sha256")
    elif provider == "btcpay":
        headers["btcpay-sig"] = "sha256=" + _hex(_secret(providers, provider), body, "sha256")
    elif provider == "nowpayments":
        signed = canonical_forms(body)[0]
        headers["x-nowpayments-sig"] = _hex(_secret(providers, provider), signed, "sha512")
    elif provider == "coinpayments":
        headers["hmac"] = _hex(_secret(providers, provider), body, "sha512")
    elif provider == "standard":
        key = base64.b64decode(_secret(providers, provider).decode().removeprefix("whsec_"))
        mid = msg_id or f"msg_chaos_{hashlib.sha256(body).hexdigest()[:20]}"
        ts = str(int(when))
        mac = hmac.new(key, f"{mid}.{ts}.".encode() + body, hashlib.sha256).digest()
        headers |= {
            "webhook-id": mid,
            "webhook-timestamp": ts,
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        }
    elif provider == "jwt":
        key = next(k for k in providers.jwt.keys if k.alg == "HS256" and k.secret is not None)
        assert key.secret is not None
        claims = {"iat": int(when), "request_body_sha256": hashlib.sha256(body).hexdigest()}
        token = jwt.encode(claims, key.secret.get_secret_value(), algorithm="HS256")
        headers["authorization"] = f"Bearer {token}"
        if record:
            SENT_TOKENS.append(token)
    else:
        raise ValueError(f"no signer for {provider!r}")
    if record:
        SENT_BODIES.append(body)
    return headers


def _hex(secret: bytes, message: bytes, digest: str) -> str:
    return hmac.new(secret, message, digest).hexdigest()


def pg_fetch(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    """One query on the real Postgres from a synchronous test (in a thread: no loop clash)."""
    import asyncio
    import concurrent.futures

    import asyncpg

    async def query() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, query()).result(timeout=30)


def wait_for(
    probe: Callable[[], T], ok: Callable[[T], bool], timeout: float = 60.0, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if ok(last):
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


ROW_SQL = """SELECT status, version, updated_at, amount::text AS amount,
    (SELECT count(*) FROM transaction_events e
     WHERE e.provider = t.provider AND e.external_id = t.external_id) AS events
FROM transactions t WHERE provider = $1 AND external_id = $2"""


def row(dsn: str, provider: str, external_id: str) -> dict[str, Any] | None:
    """A payment's Postgres row: status, version, updated_at, amount and its event count."""
    rows = pg_fetch(dsn, ROW_SQL, provider, external_id)
    return rows[0] if rows else None


def landed(dsn: str, provider: str, external_id: str) -> dict[str, Any]:
    found = wait_for(lambda: row(dsn, provider, external_id), bool, 60, f"{external_id} row")
    assert found is not None
    return found
