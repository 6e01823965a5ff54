"""Dead letters: list them with their reasons, show one, send chosen ones back (redrive).

A redrive produces the dead letter's original record (key, value, headers) again to the topic
it came from (the raw topic for ingest's dead letters), so it goes through the pipeline anew.
"""

from __future__ import annotations

import msgspec

from domain.records import DEAD_LETTER, DeadLetter
from ops import kafka_io
from ops.errors import OpsError


def provider(d: DeadLetter) -> str:
    """The provider of the original record, when it was a raw webhook."""
    for k, v in d.headers:
        if k == "provider":
            return v.decode(errors="replace")
    return ""


async def load(bootstrap: str, dlq_topic: str) -> list[DeadLetter]:
    """Every dead letter on the topic, oldest first; one per id (a redelivered failure is one)."""
    c = await kafka_io.consumer(bootstrap)
    out: dict[str, DeadLetter] = {}
    try:
        todo = await kafka_io.spans(c, dlq_topic)
        async for r in kafka_io.read(c, dlq_topic, todo):
            try:
                dl = DEAD_LETTER.decode(r.value or b"")
            except (msgspec.DecodeError, RecursionError):
                continue  # not a dead letter of ours
            out.setdefault(dl.id, dl)
    finally:
        await c.stop()
    return sorted(out.values(), key=lambda d: d.failed_at_ms)


def choose(
    letters: list[DeadLetter], ids: list[str], stage: str | None, all_: bool
) -> list[DeadLetter]:
    if ids:
        by_id = {d.id: d for d in letters}
        if missing := [i for i in ids if i not in by_id]:
            raise OpsError(f"no dead letter with id {missing[0]!r} (see: pipeline dlq list)")
        return [by_id[i] for i in ids]
    if not all_:
        raise OpsError("name dead letter ids, or pass --all (with --stage to narrow)")
    return [d for d in letters if stage is None or d.stage == stage]


async def redrive(bootstrap: str, letters: list[DeadLetter]) -> int:
    p = await kafka_io.producer(bootstrap)
    try:
        for d in letters:
            await p.send_and_wait(d.source.topic, d.value, key=d.key, headers=d.headers)
    finally:
        await p.stop()
    return len(letters)
