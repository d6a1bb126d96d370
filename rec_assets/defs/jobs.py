"""Jobs, and the stages `make run` executes through them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dagster import AssetSelection, Definitions, DagsterInstance, define_asset_job
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.raw import RAW_GROUP
from rec_assets.split.windows import WeekEvaluability

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


def ingest_stage(defs: Definitions) -> Stage:
    """Titles, users, tags and every event week of the span in one run."""
    keys = SCORING_WEEKS.get_partition_keys()
    ingest = defs.resolve_job_def(INGEST_JOB)
    return Stage(
        f"ingest titles, users and {len(keys)} event weeks ({keys[0]} .. {keys[-1]}) in one run",
        lambda instance: ingest.execute_in_process(
            instance=instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
            raise_on_error=False,
        ),
    )


def scoring_week_stage(defs: Definitions, scoring_week: str) -> Stage:
    weekly = defs.resolve_job_def(SCORING_WEEK_JOB)
    return Stage(
        f"materialise scoring week {scoring_week}",
        lambda instance: weekly.execute_in_process(instance=instance, partition_key=scoring_week,
                                                   raise_on_error=False),
        week=scoring_week,
    )


def summaries_stage(defs: Definitions) -> Stage:
    summaries = defs.resolve_job_def(SUMMARIES_JOB)
    return Stage(
        "summarise every evaluated week",
        lambda instance: summaries.execute_in_process(instance=instance, raise_on_error=False),
    )


def run_stages(defs: Definitions, weeks: list[str]) -> list[Stage]:
    """Ingest every event week in one run, materialise each scoring week of ``weeks`` in its own run, oldest
    first, then the summaries."""
    return [ingest_stage(defs), *(scoring_week_stage(defs, w) for w in weeks), summaries_stage(defs)]


def latest_evaluable(evaluate: Callable[[str], WeekEvaluability], weeks: list[str]) -> WeekEvaluability:
    """The latest of ``weeks`` that can be trained and evaluated, searching back from the last; when none can,
    the last week's evaluability (whose ``describe`` says why)."""
    last = None
    for week in reversed(weeks):
        evaluability = evaluate(week)
        last = last or evaluability
        if evaluability.ok:
            return evaluability
    return last
