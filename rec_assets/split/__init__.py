"""Time windows of a scoring week (pure code: no dagster import)."""
