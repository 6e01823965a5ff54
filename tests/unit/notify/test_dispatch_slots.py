"""The dispatcher holds an endpoint's slot until the request's outcome is written back, so a
crash can re-send at most ``max_in_flight`` requests: those under way and those answered but
not yet recorded. The outbox's claim and write-back are stand-ins here (the real ones run in
tests/integration/test_notify.py); what is tested is the dispatcher's own accounting."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from notify import outbox
from notify.dispatch import Dispatcher
from notify.http import Answer
from notify.message import Endpoint
from notify.outbox import Claimed, Outcome
from notify.schedule import Schedule

URL = "http://shop.test/hooks"
SLOTS = 2


class Client:
    def __init__(self) -> None:
        self.posted: list[str] = []

    async def post(self, url: str, headers: Any, body: bytes, timeout_s: float) -> Answer:
        self.posted.append(headers["webhook-id"])
        return Answer(204, None, 0.001)


class Nothing:
    def add(self, *args: Any) -> None: ...

    async def send(self, *args: Any) -> None: ...


def test_an_answered_request_keeps_its_slot_until_its_outcome_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = (f"msg_{i}" for i in itertools.count())
    written: list[Outcome] = []
    writes_may_finish = asyncio.Event()

    async def claim(pool: Any, endpoint: str, n: int, lease_s: float) -> list[Claimed]:
        return [Claimed(next(ids), endpoint, "p", "x", 1, "completed", b"{}", 0, 0.0, 0.0)
                for _ in range(n)]  # fmt: skip

    async def finish(pool: Any, batch: list[Outcome]) -> None:
        await writes_may_finish.wait()  # Postgres slow to write the outcomes back
        written.extend(batch)

    monkeypatch.setattr(outbox, "claim", claim)
    monkeypatch.setattr(outbox, "finish", finish)
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    endpoint = Endpoint(URL, (secret,), None, max_in_flight=SLOTS)

    async def scenario() -> tuple[int, int]:
        client, stop = Client(), asyncio.Event()
        wake, poll_s = asyncio.Event(), 0.01
        fakes: Any = (None, None, [endpoint], Schedule(), client, Nothing(), Nothing())
        fakes += (wake, poll_s)
        d = Dispatcher(*fakes)
        run = asyncio.create_task(d.run(stop))
        await asyncio.sleep(0.3)  # many wake-ups and polls while the write-back hangs
        held = len(client.posted)
        writes_may_finish.set()
        await asyncio.sleep(0.3)
        stop.set()
        await run
        return held, len(client.posted)

    held, later = asyncio.run(scenario())
    assert held == SLOTS  # answered, not recorded: no slot free, nothing more sent
    assert later > SLOTS  # recorded: the slots serve again
    assert {o.webhook_id for o in written} >= {f"msg_{i}" for i in range(SLOTS)}
