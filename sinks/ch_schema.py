"""ClickHouse tables for analysts; ``CREATE ... IF NOT EXISTS`` so that start-up may rerun them."""

from __future__ import annotations

DDL: list[str] = [
    # One row per delivery that streams processed (duplicates included): latency and outcome.
    """
    CREATE TABLE IF NOT EXISTS ingest_log (
        delivery_id  String,
        provider     LowCardinality(String),
        event_id     String,
        outcome      LowCardinality(String),
        received_at  DateTime64(3, 'UTC'),
        processed_at DateTime64(3, 'UTC'),
        latency_ms   Int64 MATERIALIZED dateDiff('millisecond', received_at, processed_at)
    ) ENGINE = ReplacingMergeTree
    ORDER BY delivery_id
    """,
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
    # Materialized views: what dashboards and analysts ask most, kept up to date on insert.
    """
    CREATE TABLE IF NOT EXISTS events_per_minute (
        minute   DateTime('UTC'),
        provider LowCardinality(String),
        status   LowCardinality(String),
        events   UInt64
    ) ENGINE = SummingMergeTree ORDER BY (minute, provider, status)
    """,
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_mv TO events_per_minute AS
    SELECT toStartOfMinute(processed_at) AS minute, provider, effective_status AS status,
           count() AS events
    FROM payment_events GROUP BY minute, provider, status
    """,
    """
    CREATE TABLE IF NOT EXISTS volume_per_currency (
        day      Date,
        currency LowCardinality(String),
        provider LowCardinality(String),
        payments UInt64,
        volume   Decimal(38, 18)
    ) ENGINE = SummingMergeTree ORDER BY (day, currency, provider)
    """,
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS volume_per_currency_mv TO volume_per_currency AS
    SELECT toDate(occurred_at) AS day, ifNull(currency, '') AS currency, provider,
           count() AS payments, sum(ifNull(amount, toDecimal128(0, 18))) AS volume
    FROM payment_events WHERE effective_status IN ('completed', 'overpaid') AND applied
    GROUP BY day, currency, provider
    """,
    """
    CREATE TABLE IF NOT EXISTS latency_per_minute (
        minute    DateTime('UTC'),
        provider  LowCardinality(String),
        latency   AggregateFunction(quantiles(0.5, 0.9, 0.99), Int64),
        deliveries AggregateFunction(count)
    ) ENGINE = AggregatingMergeTree ORDER BY (minute, provider)
    """,
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS latency_per_minute_mv TO latency_per_minute AS
    SELECT toStartOfMinute(processed_at) AS minute, provider,
           quantilesState(0.5, 0.9, 0.99)(latency_ms) AS latency, countState() AS deliveries
    FROM ingest_log GROUP BY minute, provider
    """,
    # Stuck payments (owner: ops; keep last): waiting on the provider (pending, confirmed) with
    # no news for longer than older_than_s seconds. A parameterized view:
    #   SELECT * FROM stuck_payments(older_than_s = 1800)
    # Registrations without any event have no row here (only Postgres knows them: `pipeline
    # stuck` and the dashboard read Postgres).
    """
    CREATE VIEW IF NOT EXISTS stuck_payments AS
    SELECT provider, external_id,
           argMax(to_status, (version, processed_at)) AS status,
           max(received_at) AS last_news,
           dateDiff('second', max(received_at), now64(3)) AS waiting_s
    FROM payment_events FINAL
    GROUP BY provider, external_id
    HAVING status IN ('new', 'pending', 'confirmed') AND waiting_s > {older_than_s:UInt32}
    """,
]
