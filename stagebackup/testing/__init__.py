"""Helpers for the test suite and the benchmarks (no test framework needed to import them)."""
