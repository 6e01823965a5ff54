"""Dead letters: list them with their reasons, show one, send chosen ones back (redrive).

A redrive produces the dead letter's original record (key, value, headers) again to the topic
it came from (the raw topic for ingest's dead letters), so it goes through the pipeline anew.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from domain.dlq import original_record
from ops import kafka_io
from ops.errors import OpsError


@dataclass(frozen=True)
class DeadLetter:
    id: str
    stage: str
    reason: str
    failed_at_ms: int
    source_topic: str
    doc: dict[str, Any]

    @property
    def provider(self) -> str:
        for k, v in self.doc.get("headers", []):
            if k == "provider":
                return base64.b64decode(v).decode(errors="replace")
        return ""


async def load(bootstrap: str, dlq_topic: str) -> list[DeadLetter]:
    """Every dead letter on the topic, oldest first; one per id (a redelivered failure is one)."""
    c = await kafka_io.consumer(bootstrap)
    out: dict[str, DeadLetter] = {}
    try:
        todo = await kafka_io.spans(c, dlq_topic)
        async for r in kafka_io.read(c, dlq_topic, todo):
            try:
                doc = orjson.loads(r.value)
                dl = DeadLetter(
                    doc["id"],
                    doc["stage"],
                    doc["reason"],
                    doc["failed_at_ms"],
                    doc["source"]["topic"],
                    doc,
                )
            except (orjson.JSONDecodeError, KeyError, TypeError):
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
            key, value, headers = original_record(d.doc)
            await p.send_and_wait(d.source_topic, value, key=key, headers=headers)
    finally:
        await p.stop()
    return len(letters)
