"""The dead-letter record: the original Kafka record, why it failed and at which stage."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any


def dead_letter(
    *,
    stage: str,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]],
    failed_at_ms: int,
    attempts: int = 1,
    dead_letter_id: str | None = None,
) -> dict[str, Any]:
    """One dead letter; its id is stable for a given source record and stage (so a
    redelivered failure is the same dead letter)."""
    return {
        "id": dead_letter_id or f"{topic}:{partition}:{offset}:{stage}",
        "stage": stage,
        "reason": reason[:2000],
        "attempts": attempts,
        "failed_at_ms": failed_at_ms,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "key": None if key is None else base64.b64encode(key).decode(),
        "value": None if value is None else base64.b64encode(value).decode(),
        "headers": [[k, base64.b64encode(v or b"").decode()] for k, v in headers],
    }


def original_record(
    dl: dict[str, Any],
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """Key, value and headers of the dead letter's original record, for a redrive."""
    key = None if dl.get("key") is None else base64.b64decode(dl["key"])
    value = None if dl.get("value") is None else base64.b64decode(dl["value"])
    headers = [(k, base64.b64decode(v)) for k, v in dl.get("headers", [])]
    return key, value, headers
