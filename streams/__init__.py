"""The stream processor: normalize provider payloads, deduplicate, apply the state machine."""

#: what the worker writes to stderr once it is ready, whatever the log level
READY_LINE = "streams ready"
