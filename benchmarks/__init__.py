"""Benchmark scripts (run as `python benchmarks/<name>.py`; tests import them)."""
