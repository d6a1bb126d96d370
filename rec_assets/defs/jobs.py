"""The asset jobs: ingestion, one scoring week, and the summaries across weeks."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from rec_assets.asset_io import DISTRIBUTED_GROUP, RAW_GROUP

INGEST_JOB = "ingest_history"
SCORING_WEEK_JOB = "materialize_scoring_week"
SUMMARIES_JOB = "summarize_weeks"

RAW_ASSETS = AssetSelection.groups(RAW_GROUP)
SUMMARY_ASSETS = AssetSelection.assets("evaluation_summary")
OPT_IN_ASSETS = AssetSelection.groups(DISTRIBUTED_GROUP)

ingest_history_job = define_asset_job(
    INGEST_JOB,
    selection=RAW_ASSETS,
    description="Titles, users and watch events; run over a range of weeks, it ingests them in one run.",
)


scoring_week_job = define_asset_job(
    SCORING_WEEK_JOB,
    selection=AssetSelection.all() - RAW_ASSETS - SUMMARY_ASSETS - OPT_IN_ASSETS,
    description="Split, features, towers, evaluation and recommendations of one scoring week.",
)

summaries_job = define_asset_job(
    SUMMARIES_JOB,
    selection=SUMMARY_ASSETS,
    description="Summaries over every materialised week.",
)
