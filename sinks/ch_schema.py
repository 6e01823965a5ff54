"""ClickHouse tables for analysts; start-up reruns this: tables ``IF NOT EXISTS``, plain views
``OR REPLACE`` (they hold no data, so a new definition simply takes over).

Every aggregate is idempotent per event (or delivery) id: a materialized view feeds an
AggregatingMergeTree with ``uniqExact`` / ``argMax`` / ``min`` / ``max`` states, which a second
copy of a row cannot move. So a duplicate row (a crash between insert and offset commit, a
replay, a backfill that overlaps the live views) changes no figure, and analysts read plain
views over those states. See docs/decisions/0041-idempotent-analytics-views.md.
"""

from __future__ import annotations

#: the statuses a payment is paid in full by; a payment that reached one counts in the volume
SETTLED = "('completed', 'overpaid')"

#: far-future placeholder of ``settled_at`` for a payment not settled (yet)
_NEVER = "toDateTime64('2299-12-31 00:00:00', 3, 'UTC')"

#: the SELECT of each aggregating view, by target table: the materialized view runs it on
#: every inserted block, and ``backfills`` runs it once over what a table held before the view
VIEW_SELECTS: dict[str, tuple[str, str]] = {
    "payment_totals": (
        "payment_events",
        f"""
    SELECT provider, external_id,
           argMaxState(CAST(to_status AS String), v) AS status,
           argMaxState(payment_amount, v) AS amount,
           argMaxState(payment_currency, v) AS currency,
           max(v) AS version,
           uniqExactState(event_id) AS events,
           max(toUInt8(applied AND effective_status IN {SETTLED})) AS settled,
           min(if(applied AND effective_status IN {SETTLED}, occurred_at, {_NEVER})) AS settled_at,
           min(toUInt8(provider_time)) AS provider_time
    FROM (SELECT *, version AS v FROM payment_events)
    GROUP BY provider, external_id
    """,
    ),
    "events_per_minute_state": (
        "payment_events",
        """
    SELECT toStartOfMinute(occurred_at) AS minute, provider, effective_status AS status,
           uniqExactState(event_id) AS events
    FROM payment_events
    GROUP BY minute, provider, status
    """,
    ),
    "latency_per_minute_state": (
        "ingest_log",
        """
    SELECT toStartOfMinute(processed_at) AS minute, provider,
           dateDiff('millisecond', received_at, processed_at) AS latency_ms,
           uniqExactState(delivery_id) AS deliveries
    FROM ingest_log
    GROUP BY minute, provider, latency_ms
    """,
    ),
}

#: tables of an earlier schema under a name that is now a view: (name, engine) dropped at start
LEGACY: list[tuple[str, str]] = [
    ("events_per_minute_mv", "MaterializedView"),
    ("events_per_minute", "SummingMergeTree"),
    ("volume_per_currency_mv", "MaterializedView"),
    ("volume_per_currency", "SummingMergeTree"),
    ("latency_per_minute_mv", "MaterializedView"),
    ("latency_per_minute", "AggregatingMergeTree"),
]

#: every attempt of the notifier to POST a merchant notification; the notifier creates it too
NOTIFY_ATTEMPTS = """
    CREATE TABLE IF NOT EXISTS notify_attempts (
        attempted_at DateTime64(3, 'UTC'),
        endpoint     LowCardinality(String),
        webhook_id   String,
        provider     LowCardinality(String),
        external_id  String,
        version      UInt64,
        status       LowCardinality(String),
        attempt      UInt32,
        status_code  UInt16,
        latency_ms   Float64,
        result       LowCardinality(String),
        error        String
    ) ENGINE = MergeTree ORDER BY (endpoint, attempted_at)
    """

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
    # payment_amount / payment_currency: the payment's as the pipeline knew them right after
    # this event (from its checkout or earlier events); amount / currency: what the event said.
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
        payment_amount  Nullable(Decimal(38, 18)),
        payment_currency Nullable(String),
        order_id        Nullable(String),
        occurred_at     DateTime64(3, 'UTC'),
        provider_time   Bool DEFAULT true,
        received_at     DateTime64(3, 'UTC'),
        processed_at    DateTime64(3, 'UTC'),
        version         UInt64,
        raw_id          String
    ) ENGINE = ReplacingMergeTree
    ORDER BY (provider, event_id)
    """,
    # stores made before these columns: old rows read NULL amounts and provider time
    "ALTER TABLE payment_events ADD COLUMN IF NOT EXISTS payment_amount "
    "Nullable(Decimal(38, 18)) AFTER currency",
    "ALTER TABLE payment_events ADD COLUMN IF NOT EXISTS payment_currency "
    "Nullable(String) AFTER payment_amount",
    "ALTER TABLE payment_events ADD COLUMN IF NOT EXISTS provider_time Bool DEFAULT true "
    "AFTER occurred_at",
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
    # One row per payment (after merges): its latest status, amount and currency by version,
    # whether and when it settled (the earliest applied completed/overpaid event).
    """
    CREATE TABLE IF NOT EXISTS payment_totals (
        provider      LowCardinality(String),
        external_id   String,
        status        AggregateFunction(argMax, String, UInt64),
        amount        AggregateFunction(argMax, Nullable(Decimal(38, 18)), UInt64),
        currency      AggregateFunction(argMax, Nullable(String), UInt64),
        version       SimpleAggregateFunction(max, UInt64),
        events        AggregateFunction(uniqExact, String),
        settled       SimpleAggregateFunction(max, UInt8),
        settled_at    SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
        provider_time SimpleAggregateFunction(min, UInt8)
    ) ENGINE = AggregatingMergeTree ORDER BY (provider, external_id)
    """,
    "CREATE MATERIALIZED VIEW IF NOT EXISTS payment_totals_mv TO payment_totals AS"
    + VIEW_SELECTS["payment_totals"][1],
    """
    CREATE OR REPLACE VIEW payment_summary AS
    SELECT provider, external_id,
           argMaxMerge(status) AS status,
           argMaxMerge(amount) AS amount,
           argMaxMerge(currency) AS currency,
           max(t.version) AS version,
           uniqExactMerge(t.events) AS events,
           max(t.settled) = 1 AS settled,
           if(max(t.settled) = 1, min(t.settled_at), NULL) AS settled_at,
           if(min(t.provider_time) = 1, 'provider', 'receipt') AS time_base
    FROM payment_totals AS t
    GROUP BY provider, external_id
    """,
    # Volume: each settled payment once, on the day it settled (the provider's time where the
    # provider gives one, the receipt time otherwise: time_base), at its latest amount;
    # net = gross - refunded, and net is what Postgres' completed + overpaid rows add up to.
    f"""
    CREATE OR REPLACE VIEW volume_per_currency AS
    SELECT toDate(settled_at) AS day, ifNull(currency, '') AS currency, provider, time_base,
           countIf(status IN {SETTLED}) AS payments,
           sumIf(ifNull(amount, toDecimal128(0, 18)), status IN {SETTLED}) AS volume,
           count() AS gross_payments,
           sum(ifNull(amount, toDecimal128(0, 18))) AS gross_volume,
           countIf(status = 'refunded') AS refunded_payments,
           sumIf(ifNull(amount, toDecimal128(0, 18)), status = 'refunded') AS refunded_volume
    FROM payment_summary
    WHERE settled AND status IN ('completed', 'overpaid', 'refunded')
    GROUP BY day, currency, provider, time_base
    """,
    # Distinct events per minute of the event's own time (provider's, else receipt), by the
    # status the event stands for.
    """
    CREATE TABLE IF NOT EXISTS events_per_minute_state (
        minute   DateTime('UTC'),
        provider LowCardinality(String),
        status   LowCardinality(String),
        events   AggregateFunction(uniqExact, String)
    ) ENGINE = AggregatingMergeTree ORDER BY (minute, provider, status)
    """,
    "CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_state_mv "
    "TO events_per_minute_state AS" + VIEW_SELECTS["events_per_minute_state"][1],
    """
    CREATE OR REPLACE VIEW events_per_minute AS
    SELECT minute, provider, status, uniqExactMerge(events) AS events
    FROM events_per_minute_state
    GROUP BY minute, provider, status
    """,
    # Distinct deliveries per minute of processing and per latency in ms: exact percentiles
    # (real samples, whole ms, no interpolation) that a repeated delivery row cannot move.
    """
    CREATE TABLE IF NOT EXISTS latency_per_minute_state (
        minute     DateTime('UTC'),
        provider   LowCardinality(String),
        latency_ms Int64,
        deliveries AggregateFunction(uniqExact, String)
    ) ENGINE = AggregatingMergeTree ORDER BY (minute, provider, latency_ms)
    """,
    "CREATE MATERIALIZED VIEW IF NOT EXISTS latency_per_minute_state_mv "
    "TO latency_per_minute_state AS" + VIEW_SELECTS["latency_per_minute_state"][1],
    """
    CREATE OR REPLACE VIEW latency_per_minute AS
    SELECT minute, provider, sum(n) AS deliveries,
           quantileExactWeighted(0.5)(latency_ms, n) AS p50_ms,
           quantileExactWeighted(0.9)(latency_ms, n) AS p90_ms,
           quantileExactWeighted(0.99)(latency_ms, n) AS p99_ms,
           max(latency_ms) AS max_ms
    FROM (
        SELECT minute, provider, latency_ms, uniqExactMerge(deliveries) AS n
        FROM latency_per_minute_state
        GROUP BY minute, provider, latency_ms
    )
    GROUP BY minute, provider
    """,
    # Refused transitions, each marked resolved when a later event of the same payment
    # (a higher version) brought the payment to the status the refused event stood for: an
    # early refund applied once the completion arrived. Unresolved ones are the anomalies.
    """
    CREATE OR REPLACE VIEW refused_transitions AS
    SELECT r.provider AS provider, r.external_id AS external_id, r.event_id AS event_id,
           r.status AS status, r.effective_status AS target, r.from_status AS from_status,
           r.note AS note, r.occurred_at AS occurred_at, r.received_at AS received_at,
           r.version AS version,
           arrayFirst((v, s) -> v > r.version AND s = r.effective_status,
                      l.versions, l.statuses) AS resolved_by_version,
           resolved_by_version > 0 AS resolved
    FROM (SELECT * FROM payment_events FINAL WHERE NOT applied) AS r
    LEFT JOIN (
        SELECT provider, external_id,
               arraySort(groupArray(version)) AS versions,
               arraySort((s, v) -> v, groupArray(CAST(to_status AS String)),
                         groupArray(version)) AS statuses
        FROM payment_events FINAL
        WHERE (provider, external_id) IN
              (SELECT provider, external_id FROM payment_events WHERE NOT applied)
        GROUP BY provider, external_id
    ) AS l ON l.provider = r.provider AND l.external_id = r.external_id
    """,
    # Stuck payments (owner: ops; keep last): waiting on the provider (pending, confirmed) with
    # no news for longer than older_than_s seconds. A parameterized view:
    #   SELECT * FROM stuck_payments(older_than_s = 1800)
    # Registrations without any event have no row here (only Postgres knows them: `pipeline
    # stuck` and the dashboard read Postgres).
    """
    CREATE OR REPLACE VIEW stuck_payments AS
    SELECT provider, external_id,
           argMax(to_status, (version, processed_at)) AS status,
           max(received_at) AS last_news,
           dateDiff('second', max(received_at), now64(3)) AS waiting_s
    FROM payment_events FINAL
    GROUP BY provider, external_id
    HAVING status IN ('new', 'pending', 'confirmed') AND waiting_s > {older_than_s:UInt32}
    """,
    # Merchant notifications (owner: notify): one row per HTTP attempt (notify/attempts.py)
    NOTIFY_ATTEMPTS,
]


def backfills() -> list[tuple[str, str, str]]:
    """``(target, source, INSERT ... SELECT)`` per aggregating view: run when the target is
    empty and the source is not (a store made before the view). Overlap with the live view is
    harmless: the states are idempotent per id."""
    return [
        (target, source, f"INSERT INTO {target} {select}")
        for target, (source, select) in VIEW_SELECTS.items()
    ]
