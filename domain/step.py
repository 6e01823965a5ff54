"""One record of a payment (a checkout or an event) against its table entry: pure.

The table entry (``records.Entry``) holds the transaction's state *and* its recently seen
event ids, so both change in one changelog write: a crash can never leave one updated and
not the other.

A duplicate changes nothing, but re-announces the current state and that event's transition:
if a crash lost the outputs of the first delivery (table written, output topics not), the
redelivery restores them, and sinks drop what they already hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain import dedup, machine
from domain.records import Checkout, Entry, PaymentEvent, Transition, TxState


@dataclass(frozen=True, slots=True)
class Outcome:
    entry: Entry
    changed: bool  # write the entry back
    effects: list[Transition]  # to payments.transitions
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
