"""The one partitions definition: scoring weeks, keyed by their Monday (``YYYY-MM-DD``).

Raw watch events use the same weeks (the week an event falls in); every scoring-week asset uses them
for the week it scores. The span follows the configured source: from its first event week (or
``REC_FIRST_WEEK``) to its last complete week, so a backfill of "all partitions" is exactly the weeks the
data supports. Dagster needs partitions when it loads the code, so the span is read then: from the
simulator's configuration (no data generated) or a cheap min/max over the source's events.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from functools import lru_cache

from dagster import TimeWindowPartitionMapping, WeeklyPartitionsDefinition

from rec_assets.defs.resources import SourceResource, WindowsResource, from_environment, resolved

MONDAY = 0


def _monday_on_or_before(day: date) -> date:
    return day - timedelta(days=(day.weekday() - MONDAY) % 7)


def weeks_between(first_event_day: date, end_exclusive: date, first_scoring_week: str = "") -> tuple[date, date]:
    """First scoring week and the exclusive end of the last complete week, both Mondays."""
    first = date.fromisoformat(first_scoring_week) if first_scoring_week else _monday_on_or_before(first_event_day)
    if first.weekday() != MONDAY:
        raise ValueError(f"REC_FIRST_WEEK={first_scoring_week} is not a Monday")
    end = _monday_on_or_before(end_exclusive)  # the last week must be complete: Y' needs all seven days
    if end <= first:
        raise ValueError(f"the source holds no complete week of events after {first} (events end {end_exclusive})")
    return first, end


@lru_cache(maxsize=1)
def _configured_span() -> tuple[date, date]:
    source = resolved(from_environment(SourceResource))
    windows = resolved(from_environment(WindowsResource))
    first_day, end_day = source.event_span()
    return weeks_between(first_day, end_day, windows.first_scoring_week)


def scoring_weeks_for(first_week: date, end_week: date) -> WeeklyPartitionsDefinition:
    return WeeklyPartitionsDefinition(
        start_date=first_week.isoformat(), end_date=end_week.isoformat(), day_offset=1, fmt="%Y-%m-%d"
    )


_FIRST_WEEK, _END_WEEK = _configured_span()
SCORING_WEEKS = scoring_weeks_for(_FIRST_WEEK, _END_WEEK)


def history_weeks() -> int:
    """Event weeks a scoring week reads before itself: the longest of X + Y and X'."""
    windows = resolved(from_environment(WindowsResource))
    return math.ceil((windows.history_days + windows.label_days) / 7)


# A scoring week depends on its own event week (Y') and every event week of its history windows.
EVENTS_OF_SCORING_WEEK = TimeWindowPartitionMapping(
    start_offset=-history_weeks(), end_offset=0, allow_nonexistent_upstream_partitions=True
)
