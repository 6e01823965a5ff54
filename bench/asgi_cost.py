"""CPU per request of the ingest app itself, in process: the ASGI app called directly (no
server, no sockets, no broker: an in-memory writer), against the bare Litestar endpoint of
``bench.bare_app``, over the same signed requests of every provider. What the HTTP server and
the Kafka client add comes on top and is measured by ``bench.ingest_bench``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.bare_app import app_factory
from bench.loadgen import build
from ingest.app import create_app
from ingest.writer import MemoryWriter
from pipeline.settings import Settings
from testing.traffic import Request


def _scope(r: Request) -> dict[str, Any]:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in r.headers.items()]
    headers.append((b"content-length", str(len(r.body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/webhooks/{r.provider}",
        "raw_path": f"/webhooks/{r.provider}".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _drive(app: Any, reqs: list[Request], rounds: int) -> tuple[float, dict[str, int]]:
    codes: dict[str, int] = {}
    scopes = [(_scope(r), r.body) for r in reqs]

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            codes[str(message["status"])] = codes.get(str(message["status"]), 0) + 1

    started = time.process_time()
    for _ in range(rounds):
        for scope, body in scopes:
            sent = False

            async def receive(body: bytes = body) -> Any:
                nonlocal sent
                if sent:
                    await asyncio.sleep(3600)
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            await app(dict(scope), receive, send)
    return (time.process_time() - started) / (rounds * len(scopes)), codes


async def _measure(settings: Settings, reqs: list[Request], rounds: int) -> dict[str, Any]:
    bare, ingest = app_factory(), create_app(settings, MemoryWriter())
    out: dict[str, Any] = {}
    async with ingest.lifespan(), bare.lifespan():
        for name, app in (("bare", bare), ("ingest", ingest)) * 2:  # warm, then measured
            cost, codes = await _drive(app, reqs, rounds)
            out[name] = {"us_per_request": round(cost * 1e6, 1), "codes": codes}
    return out


def bench(settings: Settings, payments: int = 300, rounds: int = 3) -> dict[str, Any]:
    """µs of CPU per request (process time, one core) for the bare endpoint and for ingest."""
    _, reqs = build(payments, settings.providers, {}, 0.0, 1, seed=5)
    out = asyncio.run(_measure(settings, reqs, rounds))
    out["requests"] = len(reqs) * rounds
    return out


if __name__ == "__main__":
    import orjson

    from pipeline.settings import load_settings

    print(orjson.dumps(bench(load_settings()), option=orjson.OPT_INDENT_2).decode())
