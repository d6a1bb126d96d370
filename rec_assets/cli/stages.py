"""The stages `make run` and `python -m rec_assets.cli backfill` execute: each a Dagster run of a job."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from dagster import DagsterInstance, DagsterRunStatus, Definitions, RunsFilter

from rec_assets.defs.jobs import INGEST_JOB, SCORING_WEEK_JOB, SUMMARIES_JOB
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.split.windows import WeekEvaluability

# Dagster's documented run tags for a run over a range of partitions (a single-run backfill).
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
# Each run the CLI executes names its process, so a later command can tell a run whose process died (SIGKILL,
# power loss) from one still running, and release what it held.
PROCESS_TAG = "rec_assets/process"
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
            tags={PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1], **process_tag()},
            raise_on_error=False,
        ),
    )


def scoring_week_stage(defs: Definitions, scoring_week: str) -> Stage:
    weekly = defs.resolve_job_def(SCORING_WEEK_JOB)
    return Stage(
        f"materialise scoring week {scoring_week}",
        lambda instance: weekly.execute_in_process(run_config=QUIET, instance=instance, partition_key=scoring_week,
                                                   tags=process_tag(), raise_on_error=False),
        week=scoring_week,
    )


def summaries_stage(defs: Definitions) -> Stage:
    summaries = defs.resolve_job_def(SUMMARIES_JOB)
    return Stage(
        "summarise every evaluated week",
        lambda instance: summaries.execute_in_process(run_config=QUIET, instance=instance, tags=process_tag(),
                                                      raise_on_error=False),
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


def process_tag() -> dict[str, str]:
    return {PROCESS_TAG: f"{socket.gethostname()}:{os.getpid()}"}


def _alive(process: str) -> bool:
    host, _, pid = process.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's process: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance: DagsterInstance) -> list[str]:
    """Runs this CLI started whose process is gone while they were running (killed): marked failed, and the pool
    slots they held freed, so the next run does not wait on them forever. Returns their run ids."""
    released = []
    running = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]))
    for run in running:
        process = run.tags.get(PROCESS_TAG)
        if process is None or _alive(process):
            continue
        instance.report_run_failed(run, f"its process {process} ended while the run was running (killed)")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released
