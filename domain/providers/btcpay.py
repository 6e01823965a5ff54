"""BTCPay Server Greenfield webhooks: ``{deliveryId, webhookId, originalDeliveryId, isRedelivery,
type, timestamp, storeId, invoiceId, metadata, ...}``.

Dedup id: ``originalDeliveryId`` (the first delivery's id, kept by every redelivery; BTCPay sets
it on first deliveries too), else ``deliveryId``. Payment id: ``invoiceId``. Time: ``timestamp``
(unix seconds of the first delivery). Amount: only payment events carry one, ``payment.value`` in
the crypto of ``paymentMethodId`` (``paymentMethod`` before BTCPay 2.0).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.errors import NormalizeError
from domain.model import Status
from domain.providers._json import decimal, load_object, opt_text, text, timestamp
from domain.records import PaymentEvent, RawWebhook

# type -> (status, {flag: status when the flag is true}); the first true flag wins.
TYPE_STATUS: dict[str, tuple[Status, dict[str, Status]]] = {
    "InvoiceCreated": (Status.NEW, {}),
    # one payment seen (or, for InvoicePaymentSettled, confirmed); the invoice is not yet paid
    "InvoiceReceivedPayment": (Status.PENDING, {}),
    "InvoicePaymentSettled": (Status.PENDING, {}),
    # fully paid, waiting for confirmations
    "InvoiceProcessing": (Status.CONFIRMED, {"overPaid": Status.OVERPAID}),
    # the surplus is what an operator must act on, so an overpaid settled invoice is overpaid
    "InvoiceSettled": (Status.COMPLETED, {"overPaid": Status.OVERPAID}),
    "InvoiceExpired": (Status.EXPIRED, {"partiallyPaid": Status.UNDERPAID}),
    "InvoiceInvalid": (Status.FAILED, {}),
}
FLAGS = ("partiallyPaid", "overPaid", "afterExpiration", "manuallyMarked")


def payment_id(body: bytes) -> str:
    """The payment this webhook is about (ingest keys the raw record by it)."""
    return text(load_object(body), "invoiceId")


def normalize(raw: RawWebhook) -> list[PaymentEvent]:
    doc = load_object(raw.body)
    etype = text(doc, "type")
    if etype not in TYPE_STATUS:
        raise NormalizeError(f"unknown btcpay event type {etype[:60]!r}")
    status, by_flag = TYPE_STATUS[etype]
    status = next((s for flag, s in by_flag.items() if doc.get(flag) is True), status)
    flags = [f for f in FLAGS if doc.get(f) is True]
    delivery = (
        opt_text(doc, "originalDeliveryId")
        or opt_text(doc, "orignalDeliveryId")  # the spelling of BTCPay before 1.0.7
        or text(doc, "deliveryId")
    )
    amount, currency = _payment(doc)
    metadata = doc.get("metadata")
    return [
        PaymentEvent(
            event_id=f"btcpay:{delivery}",
            provider="btcpay",
            external_id=text(doc, "invoiceId"),  # as payment_id
            status=status,
            occurred_at=timestamp(doc.get("timestamp"), "timestamp"),
            provider_status="+".join([etype, *flags]),
            amount=amount,
            currency=currency,
            order_id=opt_text(metadata, "orderId") if isinstance(metadata, dict) else None,
        )
    ]


def _payment(doc: dict[str, Any]) -> tuple[Decimal | None, str | None]:
    payment = doc.get("payment")
    if not isinstance(payment, dict) or payment.get("value") is None:
        return None, None
    method = opt_text(doc, "paymentMethodId") or opt_text(doc, "paymentMethod")
    if method is None:
        raise NormalizeError("payment without paymentMethodId")
    # "BTC-CHAIN", "BTC-LN", older "BTC" or "BTC_LightningLike": the crypto code comes first
    currency = method.replace("_", "-").split("-")[0].upper()
    return decimal(payment.get("value"), "payment.value"), currency
