"""Pure parts of the ClickHouse sink."""

from __future__ import annotations

from sinks.clickhouse import MAX_PARAM_BYTES, _chunks


def test_id_lookups_are_chunked_under_the_parameter_limit() -> None:
    keys = [f"coinbase:evt-{i:012d}-{'x' * 20}" for i in range(10_000)]
    chunks = _chunks(keys)
    assert [k for c in chunks for k in c] == keys
    assert len(chunks) > 1
    assert all(sum(len(k) + 4 for k in c) <= MAX_PARAM_BYTES for c in chunks)
    assert _chunks([]) == []


def test_an_event_row_carries_the_payment_amount_the_pipeline_knew() -> None:
    """BTCPay's settled event says no amount: the row still has the payment's, from the
    earlier event, and says whether the provider gave a time of its own."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from msgspec.structs import replace

    from domain import machine
    from domain.model import Status
    from domain.records import PaymentEvent
    from sinks.clickhouse import EVENT_COLUMNS, event_row

    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    paid = PaymentEvent(
        "btcpay:1",
        "btcpay",
        "inv-1",
        Status.PENDING,
        t0,
        "InvoiceReceivedPayment",
        Decimal("12.50"),
        "USDC",
    )
    settled = PaymentEvent("btcpay:2", "btcpay", "inv-1", Status.COMPLETED, t0, "InvoiceSettled")
    state, _ = machine.apply(None, paid)
    _, (effect,) = machine.apply(state, settled)
    record = replace(effect, processed_at_ms=1_764_000_000_000)  # + delivery fields
    row = dict(zip(EVENT_COLUMNS, event_row(record), strict=True))
    assert row["amount"] is None and row["currency"] is None
    assert row["payment_amount"] == Decimal("12.50") and row["payment_currency"] == "USDC"
    assert row["provider_time"] is True and row["to_status"] == "completed"
    assert row["version"] == 2
