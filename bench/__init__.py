"""Load generation and benchmarks (``make bench``): figures recorded in docs/benchmarks.md."""
