"""Process plumbing for the launcher: free ports, detached children, waiting, stopping."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil

from stack.errors import StartError

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def spawn(
    cmd: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a child in its own session (it outlives ``make up``), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    if log.exists():  # keep the previous run's log beside, so readiness reads only this run's
        log.replace(log.with_suffix(".log.1"))
    with log.open("wb") as out:
        return subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )


def wait_until(
    part: str,
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes] | None,
    log: Path,
    timeout: float,
) -> float:
    """Poll ``ready`` until true; fail with the log tail if the process exits or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc is not None and proc.poll() is not None:
            raise StartError(part, f"process exited with code {proc.returncode}", tail(log))
        with contextlib.suppress(Exception):
            if ready():
                return time.monotonic() - started
        time.sleep(0.2)
    raise StartError(part, f"not ready after {timeout:.0f} s", tail(log))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of a process (all threads) and its live children."""
    total = 0.0
    for p in _tree(pid):
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            times = p.cpu_times()
            total += times.user + times.system
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MiB (0 if gone)."""
    return sum(_rss_each(pid)) / 2**20


def largest_rss_mb(pid: int) -> float:
    """Resident memory of the largest single process among a process and its children, in
    MiB: Postgres's backends each count the shared buffers they touched, so their sum counts
    those pages once per backend."""
    return max(_rss_each(pid), default=0) / 2**20


def _rss_each(pid: int) -> list[int]:
    """Resident bytes of the process and of each descendant still there."""
    sizes = []
    for p in _tree(pid):
        with contextlib.suppress(psutil.Error):
            sizes.append(p.memory_info().rss)
    return sizes


def _tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants; empty if it is gone."""
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.Error:
        return []


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``timeout``."""
    if pid <= 1:  # never signal our own group (0) or init (1): a part that never started
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5)
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not alive(pid):
                return
            time.sleep(0.1)


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when a loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
