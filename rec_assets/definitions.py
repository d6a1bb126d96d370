"""The code location: every asset, check, job, schedule and resource of rec-assets."""

from __future__ import annotations

from dagster import Definitions, load_asset_checks_from_modules

from rec_assets.defs import raw, split
from rec_assets.defs.resources import (
    ArtifactsResource,
    WarehouseResource,
    _env,
    source_resource,
    windows_resource,
)


def build_definitions() -> Definitions:
    return Definitions(
        assets=[raw.raw_titles, raw.raw_users, raw.raw_watch_events, *split.split_assets],
        asset_checks=load_asset_checks_from_modules([raw]),
        resources={
            "source": source_resource(),
            "windows": windows_resource(),
            "warehouse_db": WarehouseResource(database=_env("REC_DUCKDB", "")),
            "artifacts": ArtifactsResource(root=_env("REC_ARTIFACTS", "")),
        },
    )


defs = build_definitions()
