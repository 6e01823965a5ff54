"""The dead-letter record of a Kafka record that failed: the original record, why, and where."""

from __future__ import annotations

from collections.abc import Iterable

from domain.records import DeadLetter, Source


def dead_letter(
    *,
    stage: str,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    failed_at_ms: int,
    attempts: int = 1,
    dead_letter_id: str | None = None,
) -> DeadLetter:
    """One dead letter; its id is stable for a given source record and stage (so a
    redelivered failure is the same dead letter)."""
    return DeadLetter(
        id=dead_letter_id or f"{topic}:{partition}:{offset}:{stage}",
        stage=stage,
        reason=reason[:2000],
        attempts=attempts,
        failed_at_ms=failed_at_ms,
        source=Source(topic, partition, offset),
        key=key,
        value=value,
        headers=[(k, v or b"") for k, v in headers],
    )
