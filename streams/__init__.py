"""The stream processor: normalize provider payloads, deduplicate, apply the state machine."""
