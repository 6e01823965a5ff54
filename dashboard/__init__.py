"""The monitoring dashboard and its read API: an app and a process of its own
(``pipeline-dashboard``), so that its Postgres, ClickHouse and Kafka reads never share the event
loop of ingest, which receives the webhooks (docs/decisions/0070)."""
