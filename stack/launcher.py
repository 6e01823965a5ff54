"""Start and stop the whole local stack; used by ``make up`` and by the test fixtures alike.

Every part runs on a free port on 127.0.0.1 with its data under the run folder (``.run/``).
``up`` waits until each part answers and writes ``stack.env``; ``down`` stops all of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.settings import Settings
from stack import proc, services
from stack.errors import StartError
from streams import READY_LINE

logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its connect retries while we poll

INFRA = ("kafka", "postgres", "clickhouse")
SERVICES = ("ingest", "streams", "sinks")


@dataclass
class Part:
    name: str
    pid: int
    port: int = 0
    port2: int = 0
    start_s: float = 0.0
    log: str = ""


@dataclass
class StackInfo:
    run_dir: str
    kafka_bootstrap: str
    postgres_dsn: str
    clickhouse_url: str
    ingest_url: str
    parts: dict[str, Part] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """What the project's processes and tools need to find the stack."""
        return {
            "KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "POSTGRES_DSN": self.postgres_dsn,
            "CLICKHOUSE_URL": self.clickhouse_url,
            "INGEST_URL": self.ingest_url,
            "PIPELINE_KAFKA__BOOTSTRAP": self.kafka_bootstrap,
            "PIPELINE_POSTGRES__DSN": self.postgres_dsn,
            "PIPELINE_CLICKHOUSE__URL": self.clickhouse_url,
        }

    def save(self) -> None:
        run = Path(self.run_dir)
        (run / "stack.json").write_text(json.dumps(asdict(self), indent=2))
        (run / "stack.env").write_text("".join(f"{k}={v}\n" for k, v in self.env().items()))

    @classmethod
    def load(cls, run_dir: Path) -> StackInfo | None:
        try:
            doc = json.loads((run_dir / "stack.json").read_text())
        except (OSError, ValueError):
            return None
        doc["parts"] = {k: Part(**v) for k, v in doc["parts"].items()}
        return cls(**doc)


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


def up(run_dir: Path, settings: Settings, services_too: bool = True) -> StackInfo:
    """Start everything not already running; return where each part listens."""
    run_dir = run_dir.resolve()
    current = StackInfo.load(run_dir)
    if current and all(proc.alive(p.pid) for p in current.parts.values()):
        return current
    if current:
        down(run_dir)
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
        "streams": lambda: _log_says(log, READY_LINE),
        "sinks": lambda: _log_says(log, "sinks ready"),
    }
    return checks[name]


def _service_env(info: StackInfo) -> dict[str, str]:
    # the Prometheus ports of the services are their parts' port2
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
        "PIPELINE_STREAMS__DATA_DIR": str(Path(info.run_dir) / "streams-data"),
        "PYTHONUNBUFFERED": "1",
    }


def _spawn(info: StackInfo, name: str) -> subprocess.Popen[bytes]:
    log = Path(info.run_dir) / "logs" / f"{name}.log"
    if name in INFRA:
        child = proc.spawn(_infra_command(info, name), log, cwd=services.REPO)
    else:
        cmd = [sys.executable, "-m", f"{name}.main"]
        child = proc.spawn(cmd, log, env=_service_env(info), cwd=services.REPO)
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
        part.start_s = round(time.monotonic() - started, 2)


def start_part(run_dir: Path, name: str, timeout: float = 120) -> float:
    """(Re)start one part on its old port and wait until it answers; seconds it took."""
    info = StackInfo.load(run_dir.resolve())
    if info is None:
        raise StartError(name, "the stack is not running")
    part = info.parts.setdefault(name, Part(name, 0))
    started = time.monotonic()
    child = _spawn(info, name)
    check = _ready_check(info, name, Path(part.log))
    proc.wait_until(name, check, child, Path(part.log), timeout=timeout)
    part.start_s = round(time.monotonic() - started, 2)
    info.save()
    return part.start_s


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


def _start_services(info: StackInfo) -> None:
    for name in SERVICES:
        started = time.monotonic()
        port = int(info.ingest_url.rsplit(":", 1)[1]) if name == "ingest" else 0
        info.parts[name] = Part(name, 0, port, proc.free_port())
        child = _spawn(info, name)
        log = Path(info.parts[name].log)
        proc.wait_until(name, _ready_check(info, name, log), child, log, timeout=120)
        info.parts[name].start_s = round(time.monotonic() - started, 2)


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


def status(run_dir: Path) -> list[tuple[str, bool, float, float, int]]:
    """(part, alive, start seconds, resident MiB, port) for each part."""
    info = StackInfo.load(run_dir.resolve())
    if info is None:
        return []
    return [
        (p.name, proc.alive(p.pid), p.start_s, proc.rss_mb(p.pid), p.port)
        for p in info.parts.values()
    ]
