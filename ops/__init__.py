"""SRE tools: replay, dead letters, rebuild, inspect, the local stack (``pipeline`` command)."""
