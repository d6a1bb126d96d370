"""The four windows of a scoring week follow docs/design.md ("Windows"): Y' is the week, Y and X' end where it starts."""

from datetime import datetime, timezone

import pytest

from rec_assets.split.windows import WindowLengths, week_windows

WEEK_START = datetime(2026, 11, 2, tzinfo=timezone.utc)
WEEK_END = datetime(2026, 11, 9, tzinfo=timezone.utc)


def test_default_windows_match_the_paper():
    w = week_windows(WEEK_START, WEEK_END, WindowLengths())
    assert (w.yp_start, w.yp_end) == (WEEK_START, WEEK_END)
    assert (w.y_start, w.y_end) == (datetime(2026, 10, 19, tzinfo=timezone.utc), WEEK_START)
    assert w.x_end == w.y_start and (w.x_end - w.x_start).days == 730
    assert w.xp_end == WEEK_START and (w.xp_end - w.xp_start).days == 730


def test_scoring_labels_are_disjoint_from_training_windows():
    w = week_windows(WEEK_START, WEEK_END, WindowLengths(history_days=30, label_days=10))
    for start, end in [(w.x_start, w.x_end), (w.y_start, w.y_end), (w.xp_start, w.xp_end)]:
        assert end <= w.yp_start and start < end


def test_sql_parameters_are_naive_utc_and_carry_the_week():
    values = week_windows(WEEK_START, WEEK_END, WindowLengths()).as_sql_parameters()
    assert values["scoring_week"].isoformat() == "2026-11-02"
    assert values["yp_start"] == datetime(2026, 11, 2) and values["yp_start"].tzinfo is None
    assert values["recent_popularity_days"] == 60 and values["history_days"] == 730


@pytest.mark.parametrize("field", ["history_days", "label_days", "recent_popularity_days"])
def test_window_lengths_must_be_positive(field):
    with pytest.raises(ValueError, match=field):
        WindowLengths(**{field: 0})


def test_a_week_must_end_after_it_starts():
    with pytest.raises(ValueError, match="before it starts"):
        week_windows(WEEK_END, WEEK_START, WindowLengths())
