"""Benchmarks: measure and compare, print a table, optionally write JSON (not tests)."""

__all__: list[str] = []
