"""Ingest throughput and latency with verification on, against a bare Litestar endpoint that
only answers 202: same server, same settings, same machine, same run. Also the server choice
(uvicorn with uvloop/httptools vs granian), and signature verification per provider."""

from __future__ import annotations

import functools
import os
import time
import timeit
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvloop

from bench import asgi_cost, common
from bench.loadgen import build, run
from ingest.verify.registry import build_verifiers
from pipeline.settings import Settings
from stack import services
from testing.traffic import PROVIDERS
from testing.webhooks import SampleEvent, signed_request

SERVERS = ("uvicorn", "granian")


def verify_costs(settings: Settings) -> dict[str, float]:
    """Microseconds per verification of a typical ~2 KB body, per provider."""
    verifiers = build_verifiers(settings.providers)
    out = {}
    for provider in PROVIDERS:
        ev = SampleEvent(
            provider,
            "pay-" + "x" * 40,
            "pending",
            Decimal("12.5"),
            "USDC",
            datetime.now(UTC),
            "evt-1",
            "order-" + "y" * 40,
        )
        body, headers = signed_request(ev, settings.providers, time.time())
        pad = 2048 - len(body)
        if provider == "coinpayments":
            body = body + b"&custom=" + b"z" * max(0, pad - 8)
        else:  # a realistic 2 KB: the provider's payload plus metadata the merchant attached
            body = body[:-1] + b',"metadata":{"note":"' + b"z" * max(0, pad - 25) + b'"}}'
        body, headers = _resign(provider, body, headers, ev, settings)
        v = verifiers[provider]
        v.verify(body, headers)
        n = 2000
        check = functools.partial(v.verify, body, headers)
        out[provider] = round(timeit.timeit(check, number=n) / n * 1e6, 1)
    return out


def _resign(
    provider: str, body: bytes, headers: dict[str, str], ev: SampleEvent, settings: Settings
) -> tuple[bytes, dict[str, str]]:
    """Sign the padded body the way the provider would (the factory signs its own body)."""
    import base64
    import hashlib
    import hmac
    import json

    import jwt

    def sec(provider: str) -> bytes:
        secrets = getattr(settings.providers, provider).secrets
        return str(secrets[0].get_secret_value()).encode()

    h = dict(headers)
    if provider == "coinbase":
        h["x-cc-webhook-signature"] = hmac.new(sec("coinbase"), body, hashlib.sha256).hexdigest()
    elif provider == "btcpay":
        h["btcpay-sig"] = "sha256=" + hmac.new(sec("btcpay"), body, hashlib.sha256).hexdigest()
    elif provider == "nowpayments":
        canon = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
        h["x-nowpayments-sig"] = hmac.new(sec("nowpayments"), canon, hashlib.sha512).hexdigest()
    elif provider == "coinpayments":
        h["hmac"] = hmac.new(sec("coinpayments"), body, hashlib.sha512).hexdigest()
    elif provider == "standard":
        key = base64.b64decode(sec("standard").decode().removeprefix("whsec_"))
        msg = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + body
        h["webhook-signature"] = (
            "v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
        )
    elif provider == "jwt":
        k = settings.providers.jwt.keys[0].secret
        assert k is not None
        token = jwt.encode(
            {"iat": int(time.time()), "request_body_sha256": hashlib.sha256(body).hexdigest()},
            k.get_secret_value(),
            algorithm="HS256",
        )
        h["authorization"] = f"Bearer {token}"
    return body, h


def load(url: str, reqs: list[Any], concurrency: int) -> dict[str, object]:
    res = uvloop.run(run(url, reqs, None, concurrency))
    return res.summary()


def bench(
    settings: Settings, payments: int = 2500, concurrency: int = 64, rounds: int = 1
) -> dict[str, Any]:
    """Bare endpoint and ingest, alternating on each server, ``rounds`` times. With
    ``BENCH_BEFORE=<checkout>`` the ingest of that checkout (the code before a change) runs
    beside them, on the same server, machine and minute."""
    before = os.environ.get("BENCH_BEFORE")
    results: dict[str, Any] = {
        "verify_us": verify_costs(settings),
        "in_process": asgi_cost.bench(settings),
        "servers": {},
    }
    targets = [
        ("bare", "bench.bare_app:app_factory", services.REPO),
        ("ingest", "ingest.asgi:app_factory", services.REPO),
    ]
    if before:
        targets.append(("ingest_before", "ingest.asgi:app_factory", Path(before)))
    _, reqs = build(payments, settings.providers, {}, 0.1, 50, seed=11)
    with common.infra(settings, "ingest") as info:
        env = {**info.env(), "PIPELINE_LOG_LEVEL": "WARNING"}
        for kind in SERVERS:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in targets}
            for _ in range(rounds):
                for name, target, repo in targets:
                    with common.server(target, kind, env, repo) as (url, pid):
                        load(url, reqs[:500], concurrency)  # warm up
                        runs[name].append(common.loaded(pid, lambda: load(url, reqs, concurrency)))
            row: dict[str, Any] = {name: _best(rs) for name, rs in runs.items()}
            row["ratio"] = round(row["ingest"]["accepted_per_s"] / row["bare"]["accepted_per_s"], 3)
            if before:
                row["ratio_before"] = round(
                    row["ingest_before"]["accepted_per_s"] / row["bare"]["accepted_per_s"], 3
                )
            if rounds > 1:
                row["rounds"] = {n: [r["accepted_per_s"] for r in rs] for n, rs in runs.items()}
            results["servers"][kind] = row
    return results


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the highest rate: the one the machine's other load disturbed least."""
    return max(runs, key=lambda r: float(r["accepted_per_s"]))


if __name__ == "__main__":
    import orjson

    from pipeline.settings import load_settings

    os.environ.setdefault("PIPELINE_LOG_LEVEL", "WARNING")
    rounds = int(os.environ.get("BENCH_ROUNDS", "1"))
    print(orjson.dumps(bench(load_settings(), rounds=rounds), option=orjson.OPT_INDENT_2).decode())
