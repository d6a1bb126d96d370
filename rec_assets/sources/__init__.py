"""Sources of raw titles, users and watch events (pure code: no dagster import)."""
