"""Shared plumbing of the benchmarks: a stack of infrastructure, child servers, the machine."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.settings import Settings
from stack import launcher, proc, services

BENCH_RUN = services.REPO / ".run" / "bench"


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{mem:.0f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


@contextmanager
def infra(
    settings: Settings, name: str, services_too: bool = False
) -> Iterator[launcher.StackInfo]:
    run = BENCH_RUN / name
    launcher.down(run)
    import shutil

    shutil.rmtree(run, ignore_errors=True)
    info = launcher.up(run, settings, services_too=services_too)
    try:
        yield info
    finally:
        launcher.down(run)


@contextmanager
def server(
    target: str, kind: str, env: dict[str, str], repo: Path = services.REPO
) -> Iterator[tuple[str, int]]:
    """Run ``bench.serve`` for an app factory (from ``repo``: another checkout measures the code
    before a change); yields its base URL and pid once it answers."""
    port = proc.free_port()
    log = BENCH_RUN / "logs" / f"{target.replace(':', '_')}-{kind}.log"
    child = proc.spawn(
        [sys.executable, "-m", "bench.serve", target, kind, str(port)],
        log,
        env={**os.environ, **env, **({"PYTHONPATH": str(repo)} if repo != services.REPO else {})},
        cwd=repo,
    )
    try:
        proc.wait_until(f"{target} on {kind}", lambda: proc.port_open(port), child, log, timeout=30)
        time.sleep(0.3)
        yield f"http://127.0.0.1:{port}", child.pid
    finally:
        proc.stop(child.pid)
        child.wait()


def loaded(pid: int, load: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``load()``'s summary plus the CPU the process ``pid`` spent on it: cores busy and µs per
    answered request."""
    cpu = proc.cpu_seconds(pid)
    out = load()
    spent = proc.cpu_seconds(pid) - cpu
    elapsed, sent = float(out["elapsed_s"]), int(out["sent"])
    out["server_cores"] = round(spent / elapsed, 3) if elapsed else 0.0
    out["server_us_per_request"] = round(spent / sent * 1e6, 1) if sent else 0.0
    return out


def pids_rss(pid: int) -> float:
    return round(proc.rss_mb(pid), 1)
