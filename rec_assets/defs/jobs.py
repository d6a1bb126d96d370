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


def backfill_weeks(first: str | None = None, last: str | None = None) -> list[str]:
    """The scoring weeks from ``first`` to ``last`` (inclusive; default: the whole configured span)."""
    keys = SCORING_WEEKS.get_partition_keys()
    if not keys:
        raise SystemExit("the configured source has no complete scoring week")
    for name, week in (("first", first), ("last", last)):
        if week is not None and week not in keys:
            raise SystemExit(f"{name} week {week} is not a scoring week of this source ({keys[0]} .. {keys[-1]})")
    start = keys.index(first) if first else 0
    end = keys.index(last) if last else len(keys) - 1
    if start > end:
        raise SystemExit(f"first week {first} is after last week {last}")
    return keys[start: end + 1]


def run_stages(defs: Definitions, week: str | None = None, weeks: list[str] | None = None) -> list[Stage]:
    """Ingest every event week in one run, materialise each scoring week of ``weeks`` (default: ``week``, else the
    latest) in its own run, oldest first, then the summaries."""
    keys = SCORING_WEEKS.get_partition_keys()
    if weeks is None:
        weeks = backfill_weeks(week or None, week or None) if week else backfill_weeks()[-1:]
    ingest = defs.resolve_job_def(INGEST_JOB)
    weekly = defs.resolve_job_def(SCORING_WEEK_JOB)
    summaries = defs.resolve_job_def(SUMMARIES_JOB)

    def scoring_week_stage(scoring_week: str) -> Stage:
        return Stage(
            f"materialise scoring week {scoring_week}",
            lambda instance: weekly.execute_in_process(instance=instance, partition_key=scoring_week,
                                                       raise_on_error=False),
            week=scoring_week,
        )

    return [
        Stage(
            f"ingest titles, users and {len(keys)} event weeks ({keys[0]} .. {keys[-1]}) in one run",
            lambda instance: ingest.execute_in_process(
                instance=instance,
                tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
                raise_on_error=False,
            ),
        ),
        *(scoring_week_stage(w) for w in weeks),
        Stage(
            "summarise every evaluated week",
            lambda instance: summaries.execute_in_process(instance=instance, raise_on_error=False),
        ),
    ]
