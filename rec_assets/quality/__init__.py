"""Data-quality suites (pure code: no dagster import)."""
