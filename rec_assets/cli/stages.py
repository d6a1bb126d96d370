"""The stages `make run` and `python -m rec_assets.cli backfill` execute: each a Dagster run of a job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dagster import DagsterInstance, Definitions

from rec_assets.defs.jobs import INGEST_JOB, SCORING_WEEK_JOB, SUMMARIES_JOB
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.split.windows import WeekEvaluability

# Dagster's documented run tags for a run over a range of partitions (a single-run backfill).
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
# The engine's event stream stays in the instance (and the log file the CLI writes), not on the console.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


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
            run_config=QUIET,
            instance=instance,
            tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]},
            raise_on_error=False,
        ),
    )


def scoring_week_stage(defs: Definitions, scoring_week: str) -> Stage:
    weekly = defs.resolve_job_def(SCORING_WEEK_JOB)
    return Stage(
        f"materialise scoring week {scoring_week}",
        lambda instance: weekly.execute_in_process(run_config=QUIET, instance=instance, partition_key=scoring_week,
                                                   raise_on_error=False),
        week=scoring_week,
    )


def summaries_stage(defs: Definitions) -> Stage:
    summaries = defs.resolve_job_def(SUMMARIES_JOB)
    return Stage(
        "summarise every evaluated week",
        lambda instance: summaries.execute_in_process(run_config=QUIET, instance=instance, raise_on_error=False),
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
