"""Every record that crosses a Kafka topic, as plain typed data with one codec each: the raw
webhook (``webhooks.raw``), the table value ``Entry`` (a ``TxState`` with its ``Applied``
events), ``Snapshot`` (``payments.state``), ``Transition`` (``payments.transitions``) and
``DeadLetter`` (``webhooks.dlq``, ``notify.dlq``). Each process decodes what it consumes once
into these types, and the domain logic works on them. A JSON record's fields encode in class
order, decimals as strings, times in UTC with a ``Z``: the bytes the hand-written code wrote
before, pinned by tests/unit/domain/golden_records.json (decision 0090)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Struct, UnsetType, field

from domain.model import Status, transaction_key

#: times a decoder accepts (a foreign record outside them is refused when read, not in a sink)
Time = Annotated[datetime, msgspec.Meta(tz=True)]
EpochMs = Annotated[int, msgspec.Meta(ge=0, le=253_402_300_799_999)]


class PaymentEvent(Struct, frozen=True):
    """One provider event about one payment, in canonical terms.

    ``event_id`` is the deduplication id, already scoped by provider. ``occurred_at`` is the
    provider's own timestamp (UTC): events are ordered by it, never by arrival.
    """

    event_id: str
    provider: str
    external_id: str
    status: Status
    occurred_at: Time
    provider_status: str
    amount: Decimal | None = None
    currency: str | None = None
    order_id: str | None = None
    received_at: Time | None = None
    raw_id: str = ""
    #: False when the provider sends no time of its own (CoinPayments IPN): ``occurred_at``
    #: is then the receipt time, shown but never used to order, and the status rank decides
    provider_time: bool = True
    #: the provider's human reference of the payment, where it has one (Coinbase: the code)
    reference: str | None = None

    @property
    def tx_key(self) -> str:
        return transaction_key(self.provider, self.external_id)

    def with_receipt(self, raw_id: str, received_at: datetime) -> PaymentEvent:
        return msgspec.structs.replace(self, raw_id=raw_id, received_at=received_at)


#: an ``Applied`` and a ``Transition`` are the event and more: its fields come first
_EVENT_WIDTH = len(PaymentEvent.__struct_fields__)


class Checkout(Struct, frozen=True):
    """An expected payment registered through ``POST /checkouts``."""

    provider: str
    external_id: str
    order_id: str
    amount: Decimal
    currency: str
    created_at: Time

    @property
    def tx_key(self) -> str:
        return transaction_key(self.provider, self.external_id)


class Origin(Struct, frozen=True):
    """What an event did when it was first applied: its transition, kept so that a
    redelivery re-sends exactly that record (a later out-of-order event may refold it)."""

    from_status: Status
    to_status: Status
    applied: bool
    note: str
    effective: Status
    version: int
    payment_amount: Decimal | None
    payment_currency: str | None


class Applied(PaymentEvent, frozen=True, kw_only=True):
    """One distinct event as the fold saw it (``applied``, ``effective``, ``note`` may change
    when an earlier event arrives late) and as it was first applied (the ``Origin``, flat;
    absent from values written before origins were kept)."""

    applied: bool
    effective: Status  # the status the event moved to, after reconciliation
    note: str = ""
    version: int | UnsetType = UNSET
    from_status: Status | UnsetType = UNSET
    to_status: Status | UnsetType = UNSET
    first_applied: bool | UnsetType = UNSET
    first_note: str | UnsetType = UNSET
    first_effective: Status | UnsetType = UNSET
    payment_amount: Decimal | UnsetType | None = UNSET
    payment_currency: str | UnsetType | None = UNSET

    @classmethod
    def of(
        cls, e: PaymentEvent, applied: bool, effective: Status, note: str, origin: Origin | None
    ) -> Applied:
        more = {} if origin is None else _origin_fields(origin)
        head = msgspec.structs.astuple(e)[:_EVENT_WIDTH]
        return cls(*head, applied=applied, effective=effective, note=note, **more)

    def with_origin(self, origin: Origin) -> Applied:
        return msgspec.structs.replace(self, **_origin_fields(origin))

    @property
    def origin(self) -> Origin | None:
        if isinstance(self.first_applied, UnsetType):
            return None
        o: Any = self  # every origin field is set when first_applied is
        return Origin(
            o.from_status, o.to_status, o.first_applied, o.first_note, o.first_effective,
            o.version, o.payment_amount, o.payment_currency,
        )  # fmt: skip


def _origin_fields(o: Origin) -> dict[str, Any]:
    return dict(
        version=o.version, from_status=o.from_status, to_status=o.to_status,
        first_applied=o.applied, first_note=o.note, first_effective=o.effective,
        payment_amount=o.payment_amount, payment_currency=o.payment_currency,
    )  # fmt: skip


class Transition(PaymentEvent, frozen=True, kw_only=True):
    """What one event did, a record of ``payments.transitions``: the event, its transition,
    the payment's amount right after it, and which delivery of the event it answers (one
    row of the ClickHouse ingest log; set by ``streams.flow``)."""

    from_status: Status
    to_status: Status
    #: the status the event itself stands for, after reconciliation (None: written before)
    effective: Status | None = field(default=None, name="effective_status")
    applied: bool
    note: str
    version: int
    payment_amount: Decimal | None = None
    payment_currency: str | None = None
    delivery_id: str = ""
    delivery_received_at_ms: EpochMs = 0
    processed_at_ms: EpochMs = 0
    outcome: str = "applied"  # applied, refused or duplicate

    @classmethod
    def first(cls, e: PaymentEvent, o: Origin) -> Transition:
        f = msgspec.structs.asdict(o)
        return cls(*msgspec.structs.astuple(e)[:_EVENT_WIDTH], **f)


class Snapshot(Struct):
    """A record of ``payments.state``: the payment as it stands, without its events (their
    history is on ``payments.transitions``), so its size does not grow with them."""

    provider: str
    external_id: str
    status: Status = Status.NEW
    version: int = 0
    amount: Decimal | None = None
    currency: str | None = None
    order_id: str | None = None
    checkout: Checkout | None = None
    late: bool = False
    updated_at: Time | None = None
    event_count: int = 0
    #: registrations of the same payment that lost to ``checkout`` (``register_checkout``)
    overruled: tuple[Checkout, ...] = field(default=(), name="overruled_checkouts")


_SNAPSHOT_WIDTH = len(Snapshot.__struct_fields__)


class TxState(Snapshot, kw_only=True):
    """A payment's state: its snapshot and its events. Treated as immutable (changed with
    ``msgspec.structs.replace``); not frozen only so that ``event_count`` follows ``events``."""

    events: tuple[Applied, ...] = ()

    def __post_init__(self) -> None:
        self.event_count = len(self.events)

    def snapshot(self) -> Snapshot:
        return Snapshot(*msgspec.structs.astuple(self)[:_SNAPSHOT_WIDTH])


class Entry(Struct, frozen=True):
    """The stream table's value: the state and its recently seen event ids, in one value so
    that both change in one changelog write."""

    state: TxState | None = None
    seen: dict[str, int] = field(default_factory=dict)


class Source(Struct, frozen=True):
    topic: str
    partition: int
    offset: int


class DeadLetter(Struct, frozen=True):
    """A record that could not be read or applied: the original record (key, value and
    headers, base64 in JSON), why, and at which stage. Its id is stable for a given source
    record and stage, so a redelivered failure is the same dead letter."""

    id: str
    stage: str
    reason: str
    attempts: int
    failed_at_ms: EpochMs
    source: Source
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


_ENCODER = msgspec.json.Encoder(decimal_format="string")


def encode(record: Entry | Snapshot | Transition | DeadLetter) -> bytes:
    """The JSON value of any record (a ``TxState`` encodes with its events: ``snapshot()``
    first for ``payments.state``)."""
    return _ENCODER.encode(record)


#: one decoder per record: msgspec.DecodeError (a ValueError), or RecursionError if too deep
ENTRY = msgspec.json.Decoder(Entry)
SNAPSHOT = msgspec.json.Decoder(Snapshot)
TRANSITION = msgspec.json.Decoder(Transition)
DEAD_LETTER = msgspec.json.Decoder(DeadLetter)


def decode_entry(value: bytes | None) -> Entry:
    """A table value; no value is the empty entry."""
    return ENTRY.decode(value) if value else Entry()


KIND_WEBHOOK = "webhook"
KIND_CHECKOUT = "checkout"
_H_PREFIX = "h-"  # a request header ingest kept; the other headers are ingest's own
_H_LEN = len(_H_PREFIX)


class EnvelopeError(ValueError):
    """A Kafka record on the raw topic lacks what ingest always writes."""


class RawWebhook(Struct, frozen=True):
    """The raw webhook as ingest writes it to ``webhooks.raw``: the value is the request body,
    byte for byte as received (signatures are checked over those bytes); everything else
    travels in Kafka record headers, so nothing is parsed or re-serialized on the way in."""

    id: str
    provider: str
    received_at_ms: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    kind: str = KIND_WEBHOOK
    request_id: str = ""
    #: the Kafka key: ``provider:external_id`` of its payment (decision 0007), so that one
    #: payment's webhooks meet in one partition; empty when the body does not say (the record
    #: is then keyed by its id, and streams dead-letters it)
    key: str = ""

    @property
    def kafka_key(self) -> bytes:
        return (self.key or self.id).encode()

    def to_kafka_headers(self) -> list[tuple[str, bytes]]:
        out = [
            ("id", self.id.encode()),
            ("provider", self.provider.encode()),
            ("kind", self.kind.encode()),
            ("received-at-ms", str(self.received_at_ms).encode()),
            ("request-id", self.request_id.encode()),
        ]
        out.extend((_H_PREFIX + k, v.encode()) for k, v in self.headers.items())
        return out

    @classmethod
    def from_kafka(cls, value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> RawWebhook:
        try:
            meta: dict[str, str] = {}
            kept: dict[str, str] = {}
            for k, v in headers:  # one pass: this runs for every record the worker reads
                text = "" if v is None else v.decode()
                if k.startswith(_H_PREFIX):
                    kept[k[_H_LEN:]] = text
                else:
                    meta[k] = text
            who = (meta["id"], meta["provider"], int(meta["received-at-ms"]))
            kind, request_id = meta.get("kind", KIND_WEBHOOK), meta.get("request-id", "")
            return cls(*who, value or b"", kept, kind, request_id)
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError(f"not a raw webhook record: {exc!r}") from exc
