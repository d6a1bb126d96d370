"""Benchmarks (pure code: no dagster import)."""
