"""ClickHouse tables for analysts; ``CREATE ... IF NOT EXISTS`` so that start-up may rerun them."""

from __future__ import annotations

DDL: list[str] = [
    # One row per distinct provider event: ReplacingMergeTree collapses any redelivery.
    """
    CREATE TABLE IF NOT EXISTS payment_events (
        event_id        String,
        provider        LowCardinality(String),
        external_id     String,
        status          LowCardinality(String),
        effective_status LowCardinality(String),
        from_status     LowCardinality(String),
        to_status       LowCardinality(String),
        applied         Bool,
        note            String,
        provider_status String,
        amount          Nullable(Decimal(38, 18)),
        currency        Nullable(String),
        order_id        Nullable(String),
        occurred_at     DateTime64(3, 'UTC'),
        received_at     DateTime64(3, 'UTC'),
        processed_at    DateTime64(3, 'UTC'),
        version         UInt64,
        raw_id          String
    ) ENGINE = ReplacingMergeTree
    ORDER BY (provider, event_id)
    """,
    """
    CREATE TABLE IF NOT EXISTS dead_letters (
        id               String,
        source_topic     String,
        source_partition Int32,
        source_offset    Int64,
        stage            LowCardinality(String),
        reason           String,
        provider         String,
        failed_at        DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY id
    """,
]
