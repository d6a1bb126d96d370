"""The stages `make run` and `python -m rec_assets.cli backfill` execute: which runs, in which order, for which weeks."""

import pytest

from rec_assets.definitions import defs
from rec_assets.defs.jobs import backfill_weeks, run_stages
from rec_assets.defs.partitions import SCORING_WEEKS

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


def test_make_run_ingests_once_then_materialises_the_latest_week_then_summarises():
    stages = run_stages(defs)
    assert [s.week for s in stages] == [None, KEYS[-1], None]
    assert stages[0].title.startswith(f"ingest titles, users and {len(KEYS)} event weeks")


def test_a_backfill_runs_one_scoring_week_per_run_between_one_ingestion_and_one_summary():
    stages = run_stages(defs, weeks=KEYS[:3])
    assert [s.week for s in stages] == [None, *KEYS[:3], None]
    assert stages[-1].title == "summarise every evaluated week"


def test_a_named_week_is_the_one_materialised():
    assert [s.week for s in run_stages(defs, KEYS[2])] == [None, KEYS[2], None]
