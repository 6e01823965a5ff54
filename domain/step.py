"""One record of a payment (a checkout or an event) against its table entry: pure.

The table entry holds the transaction's state *and* its recently seen event ids, so both
change in one changelog write: a crash can never leave one updated and not the other.

A duplicate changes nothing, but re-announces the current state and that event's transition:
if a crash lost the outputs of the first delivery (table written, output topics not), the
redelivery restores them, and sinks drop what they already hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from domain import dedup, machine
from domain.model import Checkout, PaymentEvent
from domain.state import Effect, TxState


@dataclass(frozen=True, slots=True)
class Entry:
    state: TxState | None = None
    seen: dedup.Seen = field(default_factory=dict)

    def encode(self, snapshot: dict[str, Any] | None = None) -> bytes:
        """The table value: the state with its events, and the recently seen event ids;
        ``snapshot``: the state's ``snapshot()``, when already built."""
        state = self.state
        state_json = b"null" if state is None else orjson.dumps(state.to_dict(snapshot=snapshot))
        return b'{"state":' + state_json + b',"seen":' + orjson.dumps(self.seen) + b"}"

    @classmethod
    def decode(cls, raw: bytes | None) -> Entry:
        if not raw:
            return cls()
        doc = orjson.loads(raw)
        state = TxState.from_dict(doc["state"]) if doc.get("state") else None
        return cls(state, doc.get("seen") or {})


@dataclass(frozen=True, slots=True)
class Outcome:
    entry: Entry
    changed: bool  # write the entry back
    effects: list[Effect]  # to payments.transitions
    duplicate: bool = False

    @property
    def snapshot(self) -> TxState | None:
        """What to send to payments.state: the state, whenever there is one."""
        return self.entry.state


def process(entry: Entry, record: PaymentEvent | Checkout, ttl_ms: int) -> Outcome:
    if isinstance(record, Checkout):
        new = machine.register_checkout(entry.state, record)
        changed = new is not entry.state
        return Outcome(Entry(new, entry.seen), changed, [], duplicate=not changed)
    now_ms = int((record.received_at or record.occurred_at).timestamp() * 1000)
    seen_before, seen = dedup.decide(entry.seen, record.event_id, now_ms, ttl_ms)
    if seen_before and entry.state is not None:  # the fast path: no fold for a duplicate
        again = machine.restate(entry.state, record.event_id)
        if again is not None:
            return Outcome(Entry(entry.state, seen), seen != entry.seen, [again], True)
    state, effects = machine.apply(entry.state, record)
    if effects:  # new to the state: its event set, not the TTL'd ids, is the ground truth
        return Outcome(Entry(state, seen), True, effects)
    # past the TTL the ids forgot it, the state did not: still a duplicate
    again = machine.restate(state, record.event_id)
    return Outcome(Entry(state, seen), seen != entry.seen, [again] if again else [], True)
