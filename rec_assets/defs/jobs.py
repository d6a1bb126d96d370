"""Jobs, and the stages `make run` executes through them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dagster import AssetSelection, Definitions, DagsterInstance, define_asset_job
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.raw import RAW_GROUP

INGEST_JOB = "ingest_history"
SCORING_WEEK_JOB = "materialize_scoring_week"
SUMMARIES_JOB = "summarize_weeks"

RAW_ASSETS = AssetSelection.groups(RAW_GROUP)
SUMMARY_ASSETS = AssetSelection.assets("evaluation_summary")
OPT_IN_ASSETS = AssetSelection.groups("distributed_training")

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


@dataclass
class Stage:
    title: str
    execute: Callable[[DagsterInstance], object]
    week: str | None = None


def run_stages(defs: Definitions, week: str | None = None) -> list[Stage]:
    keys = SCORING_WEEKS.get_partition_keys()
    if not keys:
        raise SystemExit("the configured source has no complete scoring week")
    week = week or keys[-1]
    if week not in keys:
        raise SystemExit(f"week {week} is not a scoring week of this source ({keys[0]} .. {keys[-1]})")
    ingest = defs.resolve_job_def(INGEST_JOB)
    weekly = defs.resolve_job_def(SCORING_WEEK_JOB)
    summaries = defs.resolve_job_def(SUMMARIES_JOB)
    return [
        Stage(
            f"ingest titles, users and {len(keys)} event weeks ({keys[0]} .. {keys[-1]}) in one run",
            lambda instance: ingest.execute_in_process(
                instance=instance,
                tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
                raise_on_error=False,
            ),
        ),
        Stage(
            f"materialise scoring week {week}",
            lambda instance: weekly.execute_in_process(instance=instance, partition_key=week, raise_on_error=False),
            week=week,
        ),
        Stage(
            "summarise every evaluated week",
            lambda instance: summaries.execute_in_process(instance=instance, raise_on_error=False),
        ),
    ]
