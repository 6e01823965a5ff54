"""The deduplication decision, pure: has this transaction already seen this event id?

The table holds, per transaction, ``{event_id: first_seen_ms}``. Entries older than the time
to live are dropped when the transaction is next touched. "Now" is the receipt time written by
ingest, not the wall clock, so a replay a week later decides exactly as the first run did.
"""

from __future__ import annotations

Seen = dict[str, int]


def decide(seen: Seen | None, event_id: str, now_ms: int, ttl_ms: int) -> tuple[bool, Seen]:
    """Return ``(is_duplicate, seen')`` where ``seen'`` includes the event and no expired ids."""
    horizon = now_ms - ttl_ms
    kept = {k: ts for k, ts in (seen or {}).items() if ts >= horizon}
    if event_id in kept:
        return True, kept
    kept[event_id] = now_ms
    return False, kept
