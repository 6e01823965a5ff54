"""Records on the pipeline's own topics: JSON via orjson, one ``type`` field to tell them apart."""

from __future__ import annotations

from typing import Any

import orjson

from streams.model import Checkout, PaymentEvent

EVENT = "event"
CHECKOUT = "checkout"


def encode_event(e: PaymentEvent) -> bytes:
    return orjson.dumps({"type": EVENT, **e.to_dict()})


def encode_checkout(c: Checkout) -> bytes:
    return orjson.dumps({"type": CHECKOUT, **c.to_dict()})


def decode(value: bytes) -> PaymentEvent | Checkout:
    doc: dict[str, Any] = orjson.loads(value)
    kind = doc.pop("type", None)
    if kind == EVENT:
        return PaymentEvent.from_dict(doc)
    if kind == CHECKOUT:
        return Checkout.from_dict(doc)
    raise ValueError(f"unknown record type {kind!r}")
