"""BTCPay Server (Greenfield): ``BTCPay-Sig: sha256=<hex HMAC-SHA256>``; a redelivery carries
a new ``deliveryId`` and the first one in ``originalDeliveryId``."""

from __future__ import annotations

from typing import Any

from pipeline.settings import ProviderSettings
from testing.builder import Builder, Signing, first_secret
from testing.encode import JSON, compact_json, digest_id, hex_hmac, plain
from testing.sample import SampleEvent

#: canonical status -> (event type, its flags)
EVENTS: dict[str, tuple[str, dict[str, bool]]] = {
    "new": ("InvoiceCreated", {}),
    "pending": ("InvoiceReceivedPayment", {"afterExpiration": False}),
    "confirmed": ("InvoiceProcessing", {"overPaid": False}),
    "completed": ("InvoiceSettled", {"manuallyMarked": False, "overPaid": False}),
    "overpaid": ("InvoiceSettled", {"manuallyMarked": False, "overPaid": True}),
    "expired": ("InvoiceExpired", {"partiallyPaid": False}),
    "underpaid": ("InvoiceExpired", {"partiallyPaid": True}),
    "failed": ("InvoiceInvalid", {"manuallyMarked": False}),
}


def body(ev: SampleEvent, attempt: int, providers: ProviderSettings) -> bytes:
    etype, flags = EVENTS[ev.status]
    unix = int(ev.occurred_at.timestamp())
    first = attempt == 1
    delivery = ev.event_id if first else digest_id("btcpay-delivery", ev.event_id, attempt, n=22)
    doc: dict[str, Any] = {
        "deliveryId": delivery,
        "webhookId": digest_id("btcpay-webhook", n=22),
        "originalDeliveryId": ev.event_id,
        "isRedelivery": attempt > 1,
        "type": etype,
        "timestamp": unix,
        "storeId": digest_id("btcpay-store", n=44),
        "invoiceId": ev.external_id,
        "metadata": {"orderId": ev.order_id},
        **flags,
    }
    if etype == "InvoiceReceivedPayment":
        doc["paymentMethodId"] = f"{ev.currency}-CHAIN"
        doc["payment"] = {
            "id": digest_id("btcpay-tx", ev.external_id, n=64) + "-0",
            "receivedDate": unix,
            "value": plain(ev.amount),
            "fee": "0.0",
            "status": "Processing",
            "destination": "bc1q" + digest_id("btcpay-address", ev.external_id, n=38),
        }
    return compact_json(doc)


def headers(ev: SampleEvent, raw: bytes, signing: Signing) -> dict[str, str]:
    mac = hex_hmac(first_secret(signing.providers, ev.provider), raw, "sha256")
    return {"content-type": JSON, "btcpay-sig": "sha256=" + mac}


BUILDER = Builder(tuple(EVENTS), body, headers)
