"""The monitoring dashboard served by ingest under ``/dashboard``."""
