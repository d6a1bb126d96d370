"""The stages `make run` and `python -m rec_assets.cli backfill` execute: which runs, in which order, for which weeks."""

from datetime import datetime, timedelta, timezone

import pytest

from rec_assets.definitions import build_definitions
from rec_assets.cli.stages import backfill_weeks, latest_evaluable, run_stages
from rec_assets.defs.jobs import INGEST_JOB, SCORING_WEEK_JOB
from rec_assets.defs.partitions import SCORING_WEEKS
from rec_assets.split.windows import WeekEvaluability, WindowLengths, week_windows

defs = build_definitions()

KEYS = SCORING_WEEKS.get_partition_keys()


def test_a_backfill_without_bounds_covers_every_scoring_week_of_the_source_oldest_first():
    assert backfill_weeks() == KEYS
    assert len(KEYS) > 3


def test_a_backfill_range_is_inclusive_at_both_ends():
    assert backfill_weeks(KEYS[1], KEYS[3]) == KEYS[1:4]
    assert backfill_weeks(last=KEYS[0]) == KEYS[:1]


@pytest.mark.parametrize("first, last, message", [
    ("2001-01-01", None, "first week 2001-01-01 is not a scoring week"),
    (None, "2001-01-02", "last week 2001-01-02 is not a scoring week"),
    (KEYS[3], KEYS[1], f"first week {KEYS[3]} is after last week {KEYS[1]}"),
])
def test_a_backfill_refuses_weeks_outside_the_span_or_out_of_order(first, last, message):
    with pytest.raises(SystemExit, match=message):
        backfill_weeks(first, last)


def test_stages_ingest_once_then_materialise_each_week_in_its_own_run_then_summarise():
    stages = run_stages(defs, KEYS[:3])
    assert [s.week for s in stages] == [None, *KEYS[:3], None]
    assert stages[0].title.startswith(f"ingest titles, users and {len(KEYS)} event weeks")
    assert stages[-1].title == "summarise every evaluated week"


def evaluability(week: str, label_users: int, scoring_users: int) -> WeekEvaluability:
    start = datetime.fromisoformat(week).replace(tzinfo=timezone.utc)
    return WeekEvaluability(week_windows(start, start + timedelta(days=7), WindowLengths()), label_users,
                            scoring_users, minimum=20)


def test_make_run_takes_the_latest_week_with_enough_labelled_users_searching_back_from_the_last():
    counts = {KEYS[-1]: (18, 1), KEYS[-2]: (40, 3), KEYS[-3]: (25, 20), KEYS[-4]: (90, 90)}
    asked = []

    def evaluate(week):
        asked.append(week)
        return evaluability(week, *counts[week])

    chosen = latest_evaluable(evaluate, KEYS[-4:])
    assert (chosen.week, chosen.ok) == (KEYS[-3], True)
    assert asked == [KEYS[-1], KEYS[-2], KEYS[-3]]  # stops at the first week that can be evaluated


def test_when_no_week_can_be_evaluated_the_last_weeks_reason_is_given():
    chosen = latest_evaluable(lambda week: evaluability(week, 18, 1), KEYS[-2:])
    assert chosen.week == KEYS[-1] and not chosen.ok
    assert chosen.describe().startswith(f"scoring week {KEYS[-1]} cannot be trained and evaluated: 18 users have a "
                                        "label in Y [")
    assert "and 1 in Y' [" in chosen.describe()
    assert chosen.describe().endswith("at least 20 are needed in each (REC_MIN_LABELLED_USERS)")


def test_the_ingestion_job_takes_every_raw_table_tags_included_and_the_week_job_none():
    raw = {"raw_titles", "raw_users", "raw_watch_events", "raw_title_tags"}
    ingest = defs.resolve_job_def(INGEST_JOB).asset_layer.selected_asset_keys
    weekly = defs.resolve_job_def(SCORING_WEEK_JOB).asset_layer.selected_asset_keys
    assert {key.to_user_string() for key in ingest} == raw
    assert not raw & {key.to_user_string() for key in weekly}
