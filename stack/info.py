"""What a run folder knows about its stack (``stack.json``, ``stack.env``), and each part's
status as ``make status`` shows it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stack import proc


@dataclass
class Part:
    """One process of the stack. ``port2``: Kafka's controller port; the Prometheus port of
    the services that serve metrics on a port of their own (streams, sinks, notify)."""

    name: str
    pid: int
    port: int = 0
    port2: int = 0
    start_s: float = 0.0  # seconds from spawn until it answered
    log: str = ""
    started_at: float = 0.0  # wall clock (epoch seconds) when it answered

    def ports(self) -> list[int]:
        return [p for p in (self.port, self.port2) if p]


@dataclass
class StackInfo:
    run_dir: str
    kafka_bootstrap: str
    postgres_dsn: str
    clickhouse_url: str
    ingest_url: str
    parts: dict[str, Part] = field(default_factory=dict)

    @property
    def dashboard_url(self) -> str:
        """Where the dashboard part listens; "" in a stack without it (infra only)."""
        part = self.parts.get("dashboard")
        return f"http://127.0.0.1:{part.port}" if part and part.port else ""

    def env(self) -> dict[str, str]:
        """What the project's processes and tools need to find the stack."""
        dashboard = {"DASHBOARD_URL": self.dashboard_url} if self.dashboard_url else {}
        return {
            "KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "POSTGRES_DSN": self.postgres_dsn,
            "CLICKHOUSE_URL": self.clickhouse_url,
            "INGEST_URL": self.ingest_url,
            **dashboard,
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


@dataclass(frozen=True)
class PartStatus:
    name: str
    alive: bool
    pid: int
    start_s: float
    started_at: float
    rss_mb: float
    listens: str  # where it answers, e.g. "127.0.0.1:5432" or "metrics 127.0.0.1:9101"


def _listens(info: StackInfo, p: Part) -> str:
    host = "127.0.0.1"
    if p.name == "kafka":
        return f"{host}:{p.port}, controller :{p.port2}"
    if p.name == "ingest":
        where = info.ingest_url.removeprefix("http://")
        return f"{where}, metrics :{p.port2}" if p.port2 else where
    if p.name == "dashboard":
        return info.dashboard_url.removeprefix("http://") + "/dashboard/"
    if p.name in ("streams", "sinks", "notify"):
        return f"metrics {host}:{p.port2}" if p.port2 else "-"
    return f"{host}:{p.port}"


def status(run_dir: Path) -> list[PartStatus]:
    """Each part of the stack this run folder knows of; empty when none is."""
    info = StackInfo.load(run_dir.resolve())
    if info is None:
        return []
    return [
        PartStatus(
            p.name,
            proc.alive(p.pid),
            p.pid,
            p.start_s,
            p.started_at,
            proc.rss_mb(p.pid),
            _listens(info, p),
        )
        for p in info.parts.values()
    ]
