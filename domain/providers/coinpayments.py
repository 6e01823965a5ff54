"""CoinPayments legacy IPN: a form-encoded body (``ipn_id``, ``merchant``, ``status``,
``status_text``, ``txn_id``, ``amount1``, ``currency1``, ``invoice``, ``item_number``, ...).

Dedup id: ``ipn_id``. Payment id: ``txn_id``. Time: the IPN carries no timestamp, so the time
ingest received it stands in. CoinPayments states that IPNs may arrive out of order or more than
once, so for one payment the status rank (not this time) is what orders them.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qs

from domain.errors import NormalizeError
from domain.model import Status, from_epoch_ms
from domain.providers._json import decimal, opt_text, text
from domain.records import PaymentEvent, RawWebhook

_STATUS = re.compile(r"-?\d{1,4}")
NOT_PAYMENTS = ("deposit", "withdrawal")  # wallet IPN types, not checkout payments


def status_of(code: int) -> Status:
    """CoinPayments' documented rule: ``>= 100`` or ``2`` complete, ``< 0`` failed or canceled."""
    if code >= 100 or code == 2:  # 2: complete, queued for the nightly payout
        return Status.COMPLETED
    if code == 1:  # "we have confirmed coin reception from the buyer"
        return Status.CONFIRMED
    if code >= 0:  # 0 waiting for funds, 3 PayPal pending, 5 in escrow, ...
        return Status.PENDING
    if code == -1:  # "Cancelled / Timed Out": CoinPayments does not tell the two apart
        return Status.CANCELED
    if code == -2:  # PayPal refund or reversal
        return Status.REFUNDED
    return Status.FAILED


def payment_id(body: bytes) -> str:
    """The payment this IPN is about (ingest keys the raw record by it)."""
    return text(parse_form(body), "txn_id")


def normalize(raw: RawWebhook) -> list[PaymentEvent]:
    form = parse_form(raw.body)
    if form.get("ipn_type") in NOT_PAYMENTS:
        raise NormalizeError(f"coinpayments ipn_type {form['ipn_type']!r} is not a payment")
    code = text(form, "status")
    if not _STATUS.fullmatch(code):
        raise NormalizeError("status is not an integer")
    return [
        PaymentEvent(
            event_id=f"coinpayments:{text(form, 'ipn_id')}",
            provider="coinpayments",
            external_id=text(form, "txn_id"),  # as payment_id
            status=status_of(int(code)),
            occurred_at=_received(raw),
            provider_time=False,
            provider_status=code,
            amount=decimal(text(form, "amount1"), "amount1"),
            currency=text(form, "currency1").upper(),
            order_id=opt_text(form, "invoice") or opt_text(form, "item_number"),
        )
    ]


def _received(raw: RawWebhook) -> datetime:
    try:
        return from_epoch_ms(raw.received_at_ms)
    except (OverflowError, ValueError, OSError):
        raise NormalizeError("received_at_ms is out of range") from None


def parse_form(body: bytes) -> dict[str, str]:
    """A strictly parsed form: valid UTF-8, well-formed pairs, every field at most once."""
    try:
        fields = parse_qs(
            body.decode(),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=200,
        )
    except ValueError:  # UnicodeDecodeError included
        raise NormalizeError("body is not form-encoded") from None
    repeated = sorted(k for k, v in fields.items() if len(v) != 1)
    if repeated:
        raise NormalizeError(f"form field {repeated[0][:40]!r} is repeated")
    return {k: v[0] for k, v in fields.items()}
