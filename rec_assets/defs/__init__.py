"""Dagster definitions: thin assets, checks, resources, partitions, schedules."""
