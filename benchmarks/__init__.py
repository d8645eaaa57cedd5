"""Benchmark scripts: each prints figures (and ``--json``); see docs/benchmarks.md."""
