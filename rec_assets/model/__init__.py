"""Pure code (no dagster import)."""
