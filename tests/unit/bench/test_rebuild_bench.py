"""The rebuild bench's records are what ingest writes, and a rebuild that differs fails it."""

from __future__ import annotations

from typing import Any

from bench import rebuild_bench
from domain.providers import normalize, payment_key
from domain.records import KIND_WEBHOOK, RawWebhook
from pipeline.settings import Settings


def test_the_records_are_ingests_envelopes_of_every_provider_with_redeliveries(
    settings: Settings,
) -> None:
    raws = rebuild_bench.raw_webhooks(settings, 300, seed=3)
    assert len(raws) == 300
    assert {r.provider for r in raws} == {
        "coinbase",
        "btcpay",
        "nowpayments",
        "coinpayments",
        "standard",
        "jwt",
    }
    for r in raws:
        assert r.kind == KIND_WEBHOOK and r.request_id
        assert r.kafka_key == payment_key(r.provider, KIND_WEBHOOK, r.body).encode()
        back = RawWebhook.from_kafka(r.body, r.to_kafka_headers())
        assert (back.id, back.provider, back.body, dict(back.headers)) == (
            r.id,
            r.provider,
            r.body,
            dict(r.headers),
        )
    # the standard scheme's id and timestamp travel in headers, as ingest keeps them
    assert all("webhook-id" in r.headers for r in raws if r.provider == "standard")
    event_ids = [e.event_id for r in raws for e in normalize(r)]
    assert len(set(event_ids)) < len(event_ids)  # provider redeliveries are among them
    assert len({r.id for r in raws}) == len(raws)


def _report(**changes: Any) -> dict[str, Any]:
    report = {
        "match": True,
        "raw_records": 1000,
        "dead_letters": 0,
        "rebuilt": 300,
        "live": 300,
        "events_rebuilt": 900,
        "events_live": 900,
        "differences": [],
        "seconds": {"read": 0.25, "fold": 0.1, "write": 0.5, "compare": 0.2},
    }
    return {**report, **changes}


USAGE = {"wall_s": 2.0, "cpu_s": 1.5, "peak_rss_mib": 512.4}


def test_rates_are_webhooks_read_per_second_of_each_phase() -> None:
    out = rebuild_bench.figures(1000, 0, _report(), USAGE)
    assert (out["read_per_s"], out["fold_per_s"], out["write_per_s"]) == (4000, 10000, 2000)
    assert out["overall_per_s"] == 500 and out["match"] and "error" not in out


def test_a_rebuild_that_differs_fails_the_part() -> None:
    differs = _report(match=False, differences=["postgres coinbase/x: rebuilt a live b"])
    out = rebuild_bench.figures(1000, 2, differs, USAGE)
    assert not out["match"] and "postgres coinbase/x" in out["error"]
    short = rebuild_bench.figures(1200, 0, _report(), USAGE)  # the topic lost records
    assert not short["match"] and "1000 raw records, 1200 written" in short["error"]
