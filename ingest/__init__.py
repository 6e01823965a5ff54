"""The ingest service: verify each provider's signature, write the raw request to Kafka, answer."""
