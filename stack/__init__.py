"""The local stack: real Kafka, Postgres and ClickHouse from packages, plus our three services."""
