"""``make bench``: every benchmark in turn (each under five minutes), then docs/benchmarks.md
with the machine, the date and every figure. Ratios are measured side by side in one run:
the machines are shared and noisy, absolute rates move from run to run."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    common,
    e2e_bench,
    ingest_bench,
    notify_bench,
    rebuild_bench,
    render,
    sinks_bench,
    streams_bench,
)
from pipeline.settings import load_settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
RESULTS = common.BENCH_RUN / "results.json"
PARTS: dict[str, Callable[..., dict[str, Any]]] = {
    "ingest": ingest_bench.bench,
    "streams": streams_bench.bench,
    "sinks": sinks_bench.bench,
    "e2e": e2e_bench.bench,
    # the rate at which receipt -> Postgres p99 stays under 250 ms, found by a short ramp
    "e2e_ramp": e2e_bench.ramp,
    # a rate this 2-core machine sustains with the whole stack, beside the 1000/s target
    "e2e_sustained": lambda settings: e2e_bench.bench(settings, rate=250.0, seconds=30),
    # a merchant platform's ordinary day: the latency when nothing queues
    "e2e_light": lambda settings: e2e_bench.bench(settings, rate=10.0, seconds=30),
    "notify": notify_bench.bench,
    # all state again from 200,000 raw webhooks, compared with the live run's
    "rebuild": rebuild_bench.bench,
}


def main() -> None:
    os.environ.setdefault("PIPELINE_LOG_LEVEL", "WARNING")
    only = [p for p in os.environ.get("BENCH_ONLY", "").split(",") if p] or list(PARTS)
    settings = load_settings()
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = common.machine()
    for name in only:
        print(f"bench: {name} ...", flush=True)
        started = time.monotonic()
        try:
            results[name] = PARTS[name](settings)
        except Exception as exc:  # one failing part is reported, the others still run
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        # its duration; not "wall_s", which a part may report of its own (the notifier does)
        results[name]["part_s"] = round(time.monotonic() - started, 1)
        if "error" in results[name]:
            print(f"bench: {name} FAILED: {results[name]['error']}", flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, default=str))
    notes = (
        DOC.read_text().split(render.NOTES, 1)[1]
        if DOC.exists() and render.NOTES in DOC.read_text()
        else ""
    )
    DOC.write_text(render.page(results) + render.NOTES + notes)
    print(f"bench: wrote {DOC}")
    if any("error" in results.get(n, {}) for n in only):
        sys.exit("bench: a part failed, see docs/benchmarks.md")


if __name__ == "__main__":
    main()
