"""The weekly schedule requests the last complete scoring week, and only once its Y' week is over."""

from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey, DefaultScheduleStatus, build_schedule_context

from rec_assets.definitions import build_definitions
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.defs.schedules import SCHEDULE_HOUR_UTC, WEEKLY_JOB, WEEKLY_SCHEDULE

defs = build_definitions()

KEYS = SCORING_WEEKS.get_partition_keys()


def _tick(at: datetime):
    schedule = defs.resolve_schedule_def(WEEKLY_SCHEDULE)
    return schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=at))


def _monday(key: str) -> datetime:
    return datetime.fromisoformat(key).replace(tzinfo=timezone.utc)


def test_the_schedule_ticks_on_monday_after_the_week_and_starts_stopped():
    schedule = defs.resolve_schedule_def(WEEKLY_SCHEDULE)
    assert schedule.cron_schedule == f"0 {SCHEDULE_HOUR_UTC} * * 1"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == WEEKLY_JOB
    assert schedule.default_status == DefaultScheduleStatus.STOPPED


@pytest.mark.parametrize("index", [0, len(KEYS) // 2, len(KEYS) - 1])
def test_a_monday_tick_requests_the_week_that_just_ended(index):
    week = KEYS[index]
    tick = _monday(week) + timedelta(days=7, hours=SCHEDULE_HOUR_UTC)
    requests = _tick(tick).run_requests
    assert [(r.partition_key, r.run_key, r.job_name) for r in requests] == [(week, week, WEEKLY_JOB)]


def test_a_week_is_not_requested_before_its_y_prime_week_is_complete():
    week = KEYS[-1]
    # Sunday evening of the week itself: Y' (the week W) is not over, the previous week is the latest complete one.
    sunday = _monday(week) + timedelta(days=6, hours=23)
    requests = _tick(sunday).run_requests
    assert [r.partition_key for r in requests] == [KEYS[-2]]
    # Before the first week has ended there is nothing to run.
    assert _tick(_monday(KEYS[0]) + timedelta(days=3)).run_requests == []


def test_the_scheduled_job_covers_the_whole_graph_but_opt_in_assets_with_the_scoring_week_partitions():
    job = defs.resolve_job_def(WEEKLY_JOB)
    assert job.partitions_def == SCORING_WEEKS
    graph = defs.resolve_asset_graph()
    opt_in = {AssetKey("tower_checkpoint_attention_id_ddp")}
    assert set(job.asset_layer.executable_asset_keys) >= set(graph.get_all_asset_keys()) - opt_in
    assert not opt_in & set(job.asset_layer.executable_asset_keys)
    assert AssetKey("raw_watch_events") in job.asset_layer.executable_asset_keys
