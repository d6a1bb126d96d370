"""rec-assets: a Dagster asset graph for weekly two-tower video recommendations."""
