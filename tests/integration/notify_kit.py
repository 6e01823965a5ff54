"""Test kit of the notifier's integration tests: a real HTTP receiver that verifies every
request with the official ``standardwebhooks`` library, a black hole (accepts, never answers),
a notifier process of the test's own (its config, its consumer group started at the end of
the transitions topic), and signed ``standard`` webhooks sent through ingest."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from standardwebhooks.webhooks import Webhook

from notify import READY_LINE
from pipeline import kafka_meta
from pipeline.settings import Settings
from stack import launcher, proc, services

TRANSITIONS = "payments.transitions"


def whsec(seed: str) -> str:
    return "whsec_" + base64.b64encode(f"notify-test-{seed}".encode()).decode()


@dataclass
class Received:
    webhook_id: str
    at: float  # time.monotonic()
    wall: float  # time.time(), to compare with the stream's processed_at
    body: bytes
    doc: dict[str, Any]
    answered: int


@dataclass
class Receiver:
    """One endpoint: ``answer(webhook_id, n)`` gives the status for the n-th (1-based) request
    of an id. Every request must verify against every secret, else the test fails."""

    secrets: list[str]
    answer: Callable[[str, int], int] = lambda _id, _n: 200
    port: int = field(default_factory=proc.free_port)
    got: list[Received] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    delay_s: float = 0.0  # before answering
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        try:
            for s in self.secrets:  # rotation: one signature per secret, each must verify
                Webhook(s).verify(body, headers)
        except Exception as exc:
            self.bad.append(f"{type(exc).__name__}: {exc}")
            return web.Response(status=400)
        wid = headers["webhook-id"]
        n = 1 + sum(1 for r in self.got if r.webhook_id == wid)
        code = self.answer(wid, n)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.got.append(
            Received(wid, time.monotonic(), time.time(), body, orjson.loads(body), code)
        )
        return web.Response(status=code)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def of(self, external_id: str) -> list[Received]:
        return [r for r in self.got if r.doc["data"]["external_id"] == external_id]


class BlackHole:
    """Accepts connections and reads, never answers: a dead endpoint that times out."""

    def __init__(self) -> None:
        self.port = proc.free_port()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        async def hold(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await r.read(-1)

        self.server = await asyncio.start_server(hold, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


Offsets = dict[TopicPartition, int]


async def commit(bootstrap: str, group: str, topic: str, at: Offsets | None = None) -> Offsets:
    """Commit the group at ``at``, or at the topic's end: the notifier takes only what comes
    next. The offsets committed."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in await kafka_meta.partitions(c, topic)]
        offsets = at if at is not None else await c.end_offsets(tps)
        c.assign(tps)
        await c.commit(dict(offsets))
        return dict(offsets)
    finally:
        await c.stop()


class Notifier:
    """A notifier process with endpoints and retry schedule of the test's choosing."""

    def __init__(self, stack: launcher.StackInfo, tmp: Path, endpoints: str, **notify: Any):
        self.stack, self.group = stack, f"notify-test-{uuid.uuid4().hex[:8]}"
        self.config = tmp / f"{self.group}.toml"
        base = (services.REPO / "config" / "local.toml").read_text().split("[notify]")[0]
        rest = (services.REPO / "config" / "local.toml").read_text().split("[postgres]", 1)[1]
        opts = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in notify.items())
        self.config.write_text(
            f'{base}[notify]\ngroup = "{self.group}"\n{opts}\n{endpoints}\n[postgres]{rest}'
        )
        self.log = tmp / f"{self.group}.log"
        self.child: subprocess.Popen[bytes] | None = None

    async def start(self, at_end: bool = True) -> Offsets:
        """Start (from the topic's end, or from the group's commits); where it started."""
        offsets: Offsets = {}
        if at_end:
            offsets = await commit(self.stack.kafka_bootstrap, self.group, TRANSITIONS)
        env = {**launcher.service_env(self.stack), "PIPELINE_CONFIG": str(self.config)}
        env.pop("PIPELINE_NOTIFY__METRICS_PORT", None)
        out = self.log.open("ab")
        self.child = subprocess.Popen(
            [sys.executable, "-m", "notify.main"], stdout=out, stderr=out, env=env,
            cwd=services.REPO, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while READY_LINE not in self.log.read_text(errors="replace"):
            assert self.child.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "notifier not ready in 60 s"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # joins its consumer group
        return offsets

    async def rewind(self, to: Offsets) -> None:
        """Move the (stopped) notifier's group back: a replay of what came since."""
        await commit(self.stack.kafka_bootstrap, self.group, TRANSITIONS, to)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.child is not None and self.child.poll() is None:
            os.killpg(self.child.pid, sig)
            self.child.wait(30)


def endpoint_toml(url: str, secrets: list[str], **extra: Any) -> str:
    lines = [f'url = "{url}"', f"secrets = {orjson.dumps(secrets).decode()}"]
    lines += [f"{k} = {orjson.dumps(v).decode()}" for k, v in extra.items()]
    return "[[notify.endpoints]]\n" + "\n".join(lines) + "\n"


async def send(api: httpx.AsyncClient, settings: Settings, payment: str, status: str,
               at: str, amount: str = "12.50", webhook_id: str | None = None) -> str:  # fmt: skip
    """One signed ``standard`` webhook through ingest (202); its webhook-id."""
    wid = webhook_id or f"evt_{uuid.uuid4().hex}"
    body = orjson.dumps({
        "id": wid, "type": f"payment.{status}", "timestamp": at,
        "data": {"payment_id": payment, "status": status, "amount": amount,
                 "currency": "USDC", "order_id": f"order-{payment}"},
    })  # fmt: skip
    secret = settings.providers.standard.secrets[0].get_secret_value()
    now = datetime.now(UTC)
    sig = Webhook(secret).sign(wid, now, body.decode())
    headers = {"webhook-id": wid, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": sig}  # fmt: skip
    r = await api.post("/webhooks/standard", content=body, headers=headers)
    assert r.status_code == 202, r.text
    return wid


async def published_at(pg: Any, endpoint: str) -> dict[tuple[str, int], float]:
    """When each transition of this endpoint's deliveries was published to
    ``payments.transitions`` (its Kafka timestamp, kept in the outbox), as epoch seconds."""
    return {k: t for k, (t, _) in (await outbox_times(pg, endpoint)).items()}


async def outbox_times(pg: Any, endpoint: str) -> dict[tuple[str, int], tuple[float, float]]:
    """Per delivery: its transition's publication and its insert into the outbox (epoch s)."""
    rows = await pg.fetch(
        "SELECT external_id, version, extract(epoch FROM transition_at)::float8 AS t, "
        "extract(epoch FROM created_at)::float8 AS c FROM notify_outbox WHERE endpoint = $1",
        endpoint,
    )
    return {(r["external_id"], r["version"]): (r["t"], r["c"]) for r in rows}
