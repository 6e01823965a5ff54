"""Start and stop the whole local stack; used by ``make up`` and by the test fixtures alike.

Every part runs on a free port on 127.0.0.1 with its data under the run folder (``.run/``).
``up`` waits until each part answers and writes ``stack.env``; ``down`` stops all of it.
A stack already running is reused: ``up`` restarts only the parts that are down, on their old
ports, so ``stack.env`` stays true (docs/decisions/0021).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from notify import READY_LINE as NOTIFY_READY
from pipeline.settings import Settings
from stack import proc, services
from stack.errors import StartError
from stack.info import Part as Part  # re-exported: callers use launcher.Part, .StackInfo
from stack.info import StackInfo as StackInfo
from stack.info import status as status
from streams import READY_LINE

logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its connect retries while we poll

INFRA = ("kafka", "postgres", "clickhouse")
SERVICES = ("ingest", "streams", "sinks", "notify", "dashboard")


async def create_topics(bootstrap: str, settings: Settings) -> None:
    """Pre-create every source topic with the partition count the Faust app expects."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        t = settings.topics
        existing = set(await admin.list_topics())
        new = [NewTopic(n, t.partitions, t.replication) for n in t.all() if n not in existing]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
    finally:
        await admin.close()


def _kafka_ready(bootstrap: str) -> bool:
    async def check() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        await admin.start()
        try:
            await admin.list_topics()
        finally:
            await admin.close()

    proc.run_sync(check)
    return True


def _log_says(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text(errors="replace")


@dataclass
class UpReport:
    """What ``ensure_up`` did: a new stack (``fresh``), or which parts it restarted on their
    old ports and which it found running and left alone."""

    info: StackInfo
    fresh: bool
    started: list[str]
    running: list[str]


def up(run_dir: Path, settings: Settings, services_too: bool = True) -> StackInfo:
    """Start everything not already running; return where each part listens."""
    return ensure_up(run_dir, settings, services_too).info


def ensure_up(run_dir: Path, settings: Settings, services_too: bool = True) -> UpReport:
    """Reuse a running stack, restarting only its parts that are down on their old ports, or
    start a new one. A stack whose every part is down and whose old ports are taken starts
    anew on new ports."""
    run_dir = run_dir.resolve()
    current = StackInfo.load(run_dir)
    wanted = (*INFRA, *SERVICES) if services_too else INFRA
    if current is not None:
        running = [n for n, p in current.parts.items() if proc.alive(p.pid)]
        dead = [n for n in wanted if n not in running]
        if running or not _ports_taken(current, dead, grace=3):
            _restart_dead(current, settings, dead)
            return UpReport(current, fresh=False, started=dead, running=running)
        down(run_dir)
    info = _start_new(run_dir, settings, services_too)
    return UpReport(info, fresh=True, started=list(info.parts), running=[])


def _ports_taken(info: StackInfo, names: list[str], grace: float = 5.0) -> list[str]:
    """Of these parts, those whose old port something else still listens on after ``grace``
    seconds (a part killed a moment ago may hold its port until it has fully exited)."""
    deadline = time.monotonic() + grace
    while True:
        taken = [
            f"{n} (port {port})"
            for n in names
            if n in info.parts
            for port in info.parts[n].ports()
            if proc.port_open(port)
        ]
        if not taken or time.monotonic() > deadline:
            return taken
        time.sleep(0.2)


def _restart_dead(info: StackInfo, settings: Settings, dead: list[str]) -> None:
    """Start each part that is down on its old ports, upstream first; every part answers."""
    if taken := _ports_taken(info, dead):
        raise StartError(
            dead[0],
            f"old port taken by another process: {', '.join(taken)}; "
            "`make down && make up` starts the stack on new ports",
        )
    for name in dead:
        _start_one(info, name)
        if name == "kafka":
            proc.run_sync(lambda: create_topics(info.kafka_bootstrap, settings))
    info.parts = {n: info.parts[n] for n in (*INFRA, *SERVICES) if n in info.parts}
    info.save()


def _start_new(run_dir: Path, settings: Settings, services_too: bool) -> StackInfo:
    run_dir.mkdir(parents=True, exist_ok=True)
    kafka_port, ctl_port, pg_port, ch_port, ingest_port = (proc.free_port() for _ in range(5))
    info = StackInfo(
        run_dir=str(run_dir),
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        postgres_dsn=f"postgresql://pipeline@127.0.0.1:{pg_port}/pipeline",
        clickhouse_url=f"http://127.0.0.1:{ch_port}",
        ingest_url=f"http://127.0.0.1:{ingest_port}",
    )
    ports = {"kafka": (kafka_port, ctl_port), "postgres": (pg_port, 0), "clickhouse": (ch_port, 0)}
    try:
        _start_infra(info, ports)
        proc.run_sync(lambda: create_topics(info.kafka_bootstrap, settings))
        if services_too:
            _start_services(info)
    except BaseException:
        info.save()
        down(run_dir)
        raise
    info.save()
    return info


def _infra_command(info: StackInfo, name: str) -> list[str]:
    run_dir, part = Path(info.run_dir), info.parts[name]
    if name == "kafka":
        return services.kafka_command(run_dir / "kafka", part.port, part.port2)
    if name == "postgres":
        return services.postgres_command(run_dir / "postgres", part.port)
    return services.clickhouse_command(run_dir / "clickhouse", part.port)


def _ready_check(info: StackInfo, name: str, log: Path) -> Callable[[], bool]:
    checks: dict[str, Callable[[], bool]] = {
        "kafka": lambda: _kafka_ready(info.kafka_bootstrap),
        "postgres": lambda: services.postgres_ready(info.parts["postgres"].port),
        "clickhouse": lambda: services.http_ok(f"{info.clickhouse_url}/ping", "Ok."),
        "ingest": lambda: services.http_ok(f"{info.ingest_url}/health"),
        "dashboard": lambda: services.http_ok(f"{info.dashboard_url}/health"),
        "streams": lambda: _log_says(log, READY_LINE),
        "sinks": lambda: _log_says(log, "sinks ready"),
        "notify": lambda: _log_says(log, NOTIFY_READY),
    }
    return checks[name]


def service_env(info: StackInfo) -> dict[str, str]:
    """The environment of a service process of this stack (tests start extra workers with it)."""
    # the Prometheus ports of the services that have one are their parts' port2
    metrics = {
        f"PIPELINE_{name.upper()}__METRICS_PORT": str(info.parts[name].port2)
        for name in SERVICES
        if name in info.parts and info.parts[name].port2
    }
    return {
        **os.environ,
        **info.env(),
        **metrics,
        "PIPELINE_INGEST__PORT": info.ingest_url.rsplit(":", 1)[1],
        "PIPELINE_DASHBOARD__PORT": info.dashboard_url.rsplit(":", 1)[-1] or "0",
        "PIPELINE_STREAMS__DATA_DIR": str(Path(info.run_dir) / "streams-data"),
        "PYTHONUNBUFFERED": "1",
    }


def _spawn(info: StackInfo, name: str) -> subprocess.Popen[bytes]:
    log = Path(info.run_dir) / "logs" / f"{name}.log"
    if name in INFRA:
        child = proc.spawn(_infra_command(info, name), log, cwd=services.REPO)
    else:
        cmd = [sys.executable, "-m", f"{name}.main"]
        child = proc.spawn(cmd, log, env=service_env(info), cwd=services.REPO)
    info.parts[name].pid, info.parts[name].log = child.pid, str(log)
    return child


def _start_infra(info: StackInfo, ports: dict[str, tuple[int, int]]) -> None:
    started = time.monotonic()
    children = {}
    for name in INFRA:
        info.parts[name] = Part(name, 0, *ports[name])
        children[name] = _spawn(info, name)
    for name in INFRA:
        part = info.parts[name]
        check = _ready_check(info, name, Path(part.log))
        proc.wait_until(name, check, children[name], Path(part.log), timeout=90)
        part.start_s, part.started_at = round(time.monotonic() - started, 2), time.time()


def start_part(run_dir: Path, name: str, timeout: float = 120) -> float:
    """(Re)start one part on its old port and wait until it answers; seconds it took."""
    info = StackInfo.load(run_dir.resolve())
    if info is None:
        raise StartError(name, "the stack is not running")
    return _start_one(info, name, timeout)


def _start_one(info: StackInfo, name: str, timeout: float = 120) -> float:
    if name not in info.parts:  # a service of a stack started without them (--infra-only)
        port = int(info.ingest_url.rsplit(":", 1)[1]) if name == "ingest" else 0
        port = proc.free_port() if name == "dashboard" else port  # its page: DASHBOARD_URL
        info.parts[name] = Part(name, 0, port, proc.free_port() if _has_metrics_port(name) else 0)
    part = info.parts[name]
    started = time.monotonic()
    child = _spawn(info, name)
    info.save()  # the new pid, before the wait: a failed start is stopped by ``down``
    check = _ready_check(info, name, Path(part.log))
    proc.wait_until(name, check, child, Path(part.log), timeout=timeout)
    part.start_s, part.started_at = round(time.monotonic() - started, 2), time.time()
    info.save()
    return part.start_s


def restart_part(run_dir: Path, name: str, timeout: float = 120) -> float:
    """Stop one part if it runs (SIGTERM), start it again on its old ports; seconds it took."""
    if name not in (*INFRA, *SERVICES):
        raise StartError(name, f"no such part; one of {', '.join((*INFRA, *SERVICES))}")
    info = StackInfo.load(run_dir.resolve())
    if info is None or name not in info.parts:
        raise StartError(name, "the stack is not running (make up starts it)")
    proc.stop(info.parts[name].pid)
    if taken := _ports_taken(info, [name]):
        raise StartError(name, f"old port taken by another process: {', '.join(taken)}")
    return start_part(run_dir, name, timeout)


def stop_part(run_dir: Path, name: str, sig: int = signal.SIGTERM) -> None:
    """Stop one part: SIGTERM (then SIGKILL if it lingers), or SIGKILL at once."""
    info = StackInfo.load(run_dir.resolve())
    if info is None or name not in info.parts:
        return
    pid = info.parts[name].pid
    if sig == signal.SIGKILL and pid > 1:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    proc.stop(pid)


def _has_metrics_port(name: str) -> bool:
    """Whether this service's settings have a Prometheus port of its own."""
    group = Settings.model_fields[name].annotation
    return isinstance(group, type) and "metrics_port" in getattr(group, "model_fields", {})


def _start_services(info: StackInfo) -> None:
    for name in SERVICES:
        _start_one(info, name)


def down(run_dir: Path) -> list[str]:
    """Stop every part this run folder knows of (services first); return their names."""
    info = StackInfo.load(run_dir.resolve())
    if info is None:
        return []
    order = [n for n in (*SERVICES, *reversed(INFRA)) if n in info.parts]
    for name in order:
        proc.stop(info.parts[name].pid)
    (run_dir / "stack.json").unlink(missing_ok=True)
    (run_dir / "stack.env").unlink(missing_ok=True)
    return order
