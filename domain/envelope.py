"""The raw webhook as ingest writes it to Kafka, and as streams reads it back.

The Kafka value is the request body, byte for byte as received (signatures are checked
over those bytes). Everything else travels in Kafka record headers, so that nothing is
parsed or re-serialized on the way in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

KIND_WEBHOOK = "webhook"
KIND_CHECKOUT = "checkout"

_H_ID = "id"
_H_PROVIDER = "provider"
_H_KIND = "kind"
_H_RECEIVED = "received-at-ms"
_H_REQUEST = "request-id"
_H_PREFIX = "h-"


class EnvelopeError(ValueError):
    """A Kafka record on the raw topic lacks what ingest always writes."""


@dataclass(frozen=True, slots=True)
class RawWebhook:
    id: str
    provider: str
    received_at_ms: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
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
            (_H_ID, self.id.encode()),
            (_H_PROVIDER, self.provider.encode()),
            (_H_KIND, self.kind.encode()),
            (_H_RECEIVED, str(self.received_at_ms).encode()),
            (_H_REQUEST, self.request_id.encode()),
        ]
        out.extend((_H_PREFIX + k, v.encode()) for k, v in self.headers.items())
        return out

    @classmethod
    def from_kafka(cls, value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> RawWebhook:
        meta: dict[str, str] = {}
        kept: dict[str, str] = {}
        try:
            for name, raw in headers:
                text = raw.decode() if raw is not None else ""
                if name.startswith(_H_PREFIX):
                    kept[name[len(_H_PREFIX) :]] = text
                else:
                    meta[name] = text
            return cls(
                id=meta[_H_ID],
                provider=meta[_H_PROVIDER],
                received_at_ms=int(meta[_H_RECEIVED]),
                body=value or b"",
                headers=kept,
                kind=meta.get(_H_KIND, KIND_WEBHOOK),
                request_id=meta.get(_H_REQUEST, ""),
            )
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError(f"not a raw webhook record: {exc!r}") from exc
