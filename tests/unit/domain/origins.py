"""States compared the way convergence promises: without each event's origin (the transition
an event produced on arrival depends on the arrival order by nature)."""

from __future__ import annotations

from typing import Any

import orjson
from msgspec import UNSET
from msgspec.structs import replace

from domain.records import TxState, encode

_ORIGIN = dict.fromkeys(
    (
        "version", "from_status", "to_status", "first_applied", "first_note",
        "first_effective", "payment_amount", "payment_currency",
    ),
    UNSET,
)  # fmt: skip


def without_origins(state: TxState) -> TxState:
    """The state as a table value written before origins were kept holds it."""
    return replace(state, events=tuple(replace(a, **_ORIGIN) for a in state.events))


def converged(state: TxState) -> dict[str, Any]:
    """The table value's state, without origins, as plain JSON data."""
    doc: dict[str, Any] = orjson.loads(encode(without_origins(state)))
    return doc
