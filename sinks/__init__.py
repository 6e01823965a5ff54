"""Sinks: consume the pipeline's output topics and write Postgres and ClickHouse."""
