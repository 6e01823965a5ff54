"""Pure parts of the SRE tools: Kafka tool output, replay targets, printing, durations."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from rich.console import Console

from domain.records import TRANSITION, Transition
from ops import kafka_tools, rebuild
from ops.cli_base import duration_s, human_ms, human_time, safe
from ops.errors import OpsError
from ops.replay import Move, Target, internal
from stack.services import KAFKA_POM

STATE = """
GROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE                #MEMBERS
sink-postgres   127.0.0.1:42239  (1)      roundrobin           Stable               1
"""

OFFSETS = """
Warn: Partition 3 from topic webhooks.raw is empty. Falling back to latest known offset.

GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG   CONSUMER-ID
sink-postgres   payments.state  1          -               0               -     -
sink-postgres   payments.state  0          31              40              9     -
"""


def test_the_tools_version_is_the_brokers() -> None:
    assert kafka_tools.version() == kafka_tools.version(KAFKA_POM) == "4.1.1"


def test_tables_are_cut_at_the_header_columns() -> None:
    [row] = kafka_tools.table(STATE)
    assert row["STATE"] == "Stable" and row["#MEMBERS"] == "1"
    assert row["COORDINATOR (ID)"] == "127.0.0.1:42239  (1)"
    rows = kafka_tools.table(OFFSETS)
    assert [(r["PARTITION"], r["CURRENT-OFFSET"], r["LOG-END-OFFSET"]) for r in rows] == [
        ("1", "-", "0"),
        ("0", "31", "40"),
    ]


def test_a_replay_target_is_exactly_one_kafka_option() -> None:
    assert Target(to_earliest=True).args() == ["--to-earliest"]
    assert Target(to_offset=0).args() == ["--to-offset", "0"]
    assert Target(shift_by=-5).args() == ["--shift-by", "-5"]
    when = datetime(2026, 12, 2, 13, 3, 28, 640000, tzinfo=UTC)
    assert Target(to_time=when).args() == ["--to-datetime", "2026-12-02T13:03:28.640Z"]
    for wrong in (Target(), Target(to_earliest=True, to_latest=True)):
        with pytest.raises(OpsError):
            wrong.args()


def test_records_to_reread_count_from_the_committed_offset() -> None:
    assert Move("t", 0, 31, 0, 40).records == 31
    assert Move("t", 0, None, 0, 40).records == 40  # nothing committed: up to the end
    assert Move("t", 0, 31, None, 40).records is None


def test_outside_values_print_literally() -> None:
    console = Console(record=True, width=200)
    console.print(f"outcome {safe('[duplicate]')} order {safe('[bold]x[/bold]')}")
    assert console.export_text().strip() == "outcome [duplicate] order [bold]x[/bold]"


def test_times_are_iso_utc() -> None:
    assert human_ms(1796216608630) == "2026-12-02T13:03:28.630Z"
    assert human_ms(None) == "-"
    assert human_time("2026-12-02 14:03:28.63+01:00") == "2026-12-02T13:03:28.630Z"


def test_durations() -> None:
    assert duration_s("30m") == 1800 and duration_s("2h") == 7200 and duration_s("90") == 90
    with pytest.raises(OpsError):
        duration_s("soon")


def test_a_replay_leaves_fausts_own_topics_alone() -> None:
    assert internal("checkout-pipeline-transactions-changelog")
    assert internal("checkout-pipeline-__assignor-__leader")
    assert not internal("webhooks.raw") and not internal("payments.events")


def _transition(
    event_id: str, external_id: str, status: str, provider_time: bool = True
) -> Transition:
    doc = {
        "event_id": event_id,
        "provider": "btcpay",
        "external_id": external_id,
        "status": status,
        "provider_status": "InvoiceReceivedPayment",
        "amount": "12.5",
        "currency": "USDC",
        "occurred_at": "2026-12-02T18:29:43Z",
        "provider_time": provider_time,
        **{"from_status": "new", "to_status": status, "applied": True, "note": "", "version": 1},
    }
    return TRANSITION.decode(orjson.dumps(doc))


def test_an_event_id_two_payments_claim_matches_the_one_clickhouse_kept() -> None:
    events = rebuild._rebuilt_events(
        [
            _transition("btcpay:reused", "inv-a", "pending"),
            _transition("btcpay:reused", "inv-b", "pending"),
            _transition("btcpay:reused", "inv-a", "completed"),  # a later claim: first kept
        ]
    )
    [claims] = events.values()
    assert [c[2] for c in claims] == ["inv-a", "inv-b"]
    ms = 1796236183000
    kept_b = ("btcpay:reused", "btcpay", "inv-b", "pending", "InvoiceReceivedPayment")
    live = {("btcpay", "btcpay:reused"): (*kept_b, Decimal("12.5"), "USDC", ms)}
    differences: list[str] = []
    assert rebuild._compare(events, live, "clickhouse", differences, rebuild._same_event) == 1
    assert differences == []
    other = {("btcpay", "btcpay:reused"): (*kept_b[:2], "inv-c", *kept_b[3:], None, None, ms)}
    assert rebuild._compare(events, other, "clickhouse", differences, rebuild._same_event) == 0
    assert len(differences) == 1  # a row no payment claimed is still a difference


def test_an_event_without_a_provider_time_matches_any_receipt_time() -> None:
    events = rebuild._rebuilt_events([_transition("cp:1", "inv-a", "pending", False)])
    row = ("cp:1", "btcpay", "inv-a", "pending", "InvoiceReceivedPayment", Decimal("12.5"), "USDC")
    assert rebuild._same_event(events[("btcpay", "cp:1")], (*row, 123))
    assert not rebuild._same_event(events[("btcpay", "cp:1")], None)
    assert not rebuild._same_event(None, (*row, 123))
