"""``pipeline-loadgen``: realistic signed webhook traffic against an ingest URL.

Every provider (mix configurable), a share of provider redeliveries, deliveries shuffled
within a window (out of order), all signed and serialized before the clock starts, then sent
by a lean keep-alive client (``bench.http_client``) that reports its own CPU share. Open loop
at a target rate (latency counted from each request's scheduled time, so a slow server cannot
hide its queue) or closed loop at a concurrency. Reports accepted per second and latency
percentiles, and writes the accepted webhooks (JSON lines) so that a checker can compare the
end state.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import orjson
import typer
import uvloop

from bench.http_client import Job, Pool, request_bytes
from pipeline.settings import ProviderSettings
from testing.traffic import PROVIDERS, Payment, Request, payments, requests
from testing.webhooks import expected_event_id


@dataclass
class Result:
    sent: int = 0
    codes: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    accepted: list[Request] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    retries: int = 0
    #: CPU seconds the load generator's process spent while it ran (its own share)
    cpu_s: float = 0.0

    def pct(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=1000, method="inclusive")[int(q * 10) - 1]

    def summary(self) -> dict[str, object]:
        ok = self.codes.get(202, 0)
        return {
            "sent": self.sent,
            "accepted": ok,
            "codes": {str(k): v for k, v in self.codes.items()},
            "errors": dict(self.errors),
            "retries_503": self.retries,
            "elapsed_s": round(self.elapsed, 3),
            "accepted_per_s": round(ok / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": round(self.pct(50) * 1000, 2),
            "p90_ms": round(self.pct(90) * 1000, 2),
            "p99_ms": round(self.pct(99) * 1000, 2),
            "loadgen_cores": round(self.cpu_s / self.elapsed, 3) if self.elapsed else 0.0,
            "loadgen_us_per_request": round(self.cpu_s / self.sent * 1e6, 1) if self.sent else 0.0,
        }


def build(
    count: int,
    providers: ProviderSettings,
    mix: dict[str, int],
    duplicate_share: float,
    window: int,
    seed: int,
) -> tuple[list[Payment], list[Request]]:
    """Payments and their signed deliveries: redeliveries added, shuffled within ``window``."""
    weighted = tuple(p for p in PROVIDERS for _ in range(mix.get(p, 0)))
    pays = payments(count, seed=seed, providers=weighted or PROVIDERS)
    return pays, requests(pays, providers, seed, duplicate_share, time.time(), window)


async def run(
    url: str,
    reqs: list[Request],
    rate: float | None,
    concurrency: int,
    retry_503: bool = False,
    timeout_s: float = 30.0,
) -> Result:
    """Send ``reqs``: open loop at ``rate`` per second (latency from each request's scheduled
    time), or closed loop with ``concurrency`` in flight; at most ``concurrency`` connections.
    Every request is serialized before the clock starts. ``retry_503`` retries 503s and broken
    connections with backoff, like a provider."""
    res = Result()
    host = urlsplit(url).netloc
    jobs = [
        Job(i, request_bytes(host, f"/webhooks/{r.provider}", r.headers, r.body))
        for i, r in enumerate(reqs)
    ]
    finished = asyncio.Event()
    loop = asyncio.get_running_loop()
    clock = time.perf_counter

    def done(job: Job, code: int, error: str) -> None:
        if error:
            res.errors[error] += 1
        if retry_503 and code in (0, 503) and job.attempt < 60:
            job.attempt += 1
            res.retries += 1
            delay = min(2.0, 0.05 * 2**job.attempt) * random.random()
            loop.call_later(delay, pool.submit, job)
            return
        res.latencies.append(clock() - job.t0)
        res.codes[code] += 1
        res.sent += 1
        if code == 202:
            res.accepted.append(reqs[job.index])
        if res.sent == len(jobs):
            finished.set()

    pool = Pool(url, concurrency, timeout_s, done)
    cpu0 = time.process_time()
    start = clock()
    if not jobs:
        finished.set()
    await _submit(pool, jobs, rate, start)
    await finished.wait()
    res.elapsed = clock() - start
    res.cpu_s = time.process_time() - cpu0
    pool.close()
    return res


async def _submit(pool: Pool, jobs: list[Job], rate: float | None, start: float) -> None:
    """Open loop: each job at its scheduled time from ``start``; closed loop: all at once,
    each timed from when the pool starts it."""
    clock = time.perf_counter
    if rate:
        for job in jobs:
            job.t0 = start + job.index / rate
        for job in jobs:
            ahead = job.t0 - clock()
            if ahead > 0.0005:  # every request whose time has come goes at once
                await asyncio.sleep(ahead)
            pool.submit(job)
        return

    def stamp(job: Job) -> None:
        if job.attempt == 0:
            job.t0 = clock()

    pool.on_start = stamp
    for job in jobs:
        pool.submit(job)


def write_accepted(path: Path, accepted: list[Request]) -> None:
    """One line per accepted webhook: enough for a checker to compute the expected end state."""
    with path.open("wb") as out:
        for r in accepted:
            p = r.payment
            out.write(
                orjson.dumps(
                    {
                        "provider": p.provider,
                        "external_id": p.external_id,
                        "expected_status": p.expected_status,
                        "duplicate": r.duplicate,
                        "event_ids": [expected_event_id(e) for e in p.events],
                    }
                )
                + b"\n"
            )


def parse_mix(text: str) -> dict[str, int]:
    out = {}
    for part in filter(None, text.split(",")):
        name, _, weight = part.partition("=")
        if name not in PROVIDERS:
            raise typer.BadParameter(f"unknown provider {name!r} in --mix")
        out[name] = int(weight or 1)
    return out


def main_cli(
    url: Annotated[str, typer.Option(envvar="INGEST_URL", help="ingest base URL")],
    payments_: Annotated[int, typer.Option("--payments", help="how many payments")] = 1000,
    rate: Annotated[
        float, typer.Option(help="open loop: requests per second (0 = closed loop)")
    ] = 0.0,
    concurrency: Annotated[int, typer.Option(help="closed loop: requests in flight")] = 64,
    duplicates: Annotated[float, typer.Option(help="share of events delivered twice")] = 0.1,
    window: Annotated[int, typer.Option(help="shuffle window (out-of-order deliveries)")] = 50,
    mix: Annotated[str, typer.Option(help="provider weights, e.g. coinbase=3,btcpay=1")] = "",
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
    retry_503: Annotated[bool, typer.Option(help="retry 503s and errors like a provider")] = False,
    accepted_out: Annotated[
        Path | None, typer.Option(help="write accepted webhooks (JSON lines)")
    ] = None,
) -> None:
    """Send realistic signed webhook traffic and report accepted/s and latency percentiles."""
    from pipeline.settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"loadgen: {exc}", err=True)
        raise typer.Exit(1) from None
    _, reqs = build(payments_, settings.providers, parse_mix(mix), duplicates, window, seed)
    inflight = concurrency if not rate else max(concurrency, 2000)
    res = uvloop.run(run(url, reqs, rate or None, inflight, retry_503))
    if accepted_out:
        write_accepted(accepted_out, res.accepted)
    typer.echo(orjson.dumps(res.summary()).decode())
    if res.codes.get(202, 0) != res.sent:
        sys.exit(1)


def main() -> None:
    typer.run(main_cli)


if __name__ == "__main__":
    main()
