"""Benchmarks for authsvc; run ``python -m bench.connect`` from the repository root."""
