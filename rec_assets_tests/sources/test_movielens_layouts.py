"""Every public MovieLens layout, built from the shared 100k bundle: every good row is kept and counted, every bad
one quarantined with its reason, and the rows read add up to stored + quarantined + cascaded + held back."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pandas as pd
import pytest

from rec_assets.sources.movielens import OCCUPATION_CODES, MovieLensSource
from rec_assets.sources.protocol import TimestampBounds
from rec_assets.sources.rejects import IngestionError, Reason
from rec_assets_tests.sources import movielens_layouts as layouts

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
BOUNDS = TimestampBounds.for_run(NOW)
SPAN = (date(1997, 9, 20), date(1998, 4, 23))
END_OF_LAST_COMPLETE_WEEK = datetime(1998, 4, 20, tzinfo=timezone.utc)
pytestmark = pytest.mark.skipif(not layouts.SHARED.is_dir(), reason="MovieLens 100K is not at ../shared/data")


def read_all(directory, mode="quarantine", end=END_OF_LAST_COMPLETE_WEEK):
    source = MovieLensSource(directory)
    titles = source.read_titles(mode=mode, now=NOW)
    users = source.read_users(mode=mode)
    events = source.read_events(start=None, end=end, known_title_ids=titles.titles["title_id"],
                                known_user_ids=users.known_user_ids, now=BOUNDS.latest, earliest=BOUNDS.earliest,
                                mode=mode)
    return source, titles, users, events


def assert_accounted(events, expected: layouts.Expected) -> None:
    counts = events.accounting()
    assert counts["rows_read"] == expected.ratings_rows
    assert counts["stored"] == events.events.num_rows == expected.stored_by_full_ingest
    assert counts["held_back"] == expected.held_back
    assert counts["rows_read"] == counts["stored"] + counts["quarantined"] + counts["cascaded"] + counts["held_back"]
    assert {k.split(":", 1)[1]: n for k, n in counts.items() if k.startswith("quarantined:")} == expected.bad_by_reason


def test_without_a_users_file_every_rating_is_kept_and_users_are_not_checked(tmp_path):
    directory, expected = layouts.without_users_file(tmp_path / "ml")
    _, titles, users, events = read_all(directory)
    assert users.counts["missing_users_file"] == 1 and users.known_user_ids is None
    assert len(titles.titles) == expected.titles
    assert_accounted(events, expected)


def test_the_dat_layout_in_latin1_reads_like_the_csv_layout(tmp_path):
    directory, expected = layouts.dat_latin1(tmp_path / "ml")
    source, titles, users, events = read_all(directory)
    assert (source.ratings.name, source.movies.name, source.users.name) == ("ratings.dat", "movies.dat", "users.dat")
    assert len(titles.titles) == expected.titles and titles.rejected.empty
    assert titles.titles.set_index("title_id").loc[543, "title"] == "Les Misérables"  # OMDb's title, same film
    assert titles.counts["fallback_decoded_lines:movies.dat"] == 9  # the nine titles with accents
    assert len(users.users) == 943 and users.rejected.empty
    assert set(users.users["occupation"]) <= set(OCCUPATION_CODES.values())
    first = users.users.set_index("user_id").loc[1]
    assert (first["age_band"], first["gender"], first["region"]) == ("18-24", "M", "zip-8")
    assert_accounted(events, expected)
    csv_events = read_all(layouts.SHARED)[3].events
    assert events.events.equals(csv_events)
    assert source.event_span(BOUNDS) == SPAN


def test_a_bad_dat_rating_is_quarantined_with_its_line_and_dat_text(tmp_path):
    directory, _ = layouts.dat_latin1(tmp_path / "ml")
    with open(directory / "ratings.dat", "a") as handle:
        handle.write("1::1::5::abc\n1:1::5::881250949\n")
    _, _, _, events = read_all(directory)
    assert events.rejected[["line", "reason", "raw"]].values.tolist() == [
        [100_001, Reason.BAD_TIMESTAMP, "1::1::5::abc"], [100_002, Reason.FIELD_COUNT, "1:1::5::881250949"],
    ]
    with pytest.raises(IngestionError, match=r"^ratings.dat line 100001: timestamp 'abc' does not parse$"):
        read_all(directory, mode="fail")


def test_a_latin1_title_in_a_utf8_file_is_decoded_and_keeps_its_ratings(tmp_path):
    directory, expected = layouts.latin1_title_in_utf8_file(tmp_path / "ml")
    _, titles, _, events = read_all(directory)
    assert titles.titles.set_index("title_id").loc[layouts.LATIN1_TITLE_ID, "title"] == "Töy Story"
    assert titles.counts["fallback_decoded_lines:movies.csv"] == 1 and titles.rejected.empty
    assert_accounted(events, expected)


def test_a_rejected_titles_ratings_are_a_cascade_reported_apart_from_bad_rows(tmp_path):
    directory, _ = layouts.without_users_file(tmp_path / "ml")
    lines = (directory / "movies.csv").read_bytes().splitlines(keepends=True)
    lines[1] = b"1,Toy Story (1995),Animation,one field too many\n"
    (directory / "movies.csv").write_bytes(b"".join(lines))
    _, titles, _, events = read_all(directory)
    assert titles.rejected[["file", "line", "reason"]].values.tolist() == [["movies.csv", 2, Reason.FIELD_COUNT]]
    toy_story_ratings = int((pd.read_csv(layouts.SHARED / "ratings.csv")["movieId"] == 1).sum())
    counts = events.accounting()
    assert counts["cascaded"] == counts["cascaded:rejected_title"] == toy_story_ratings == 452
    assert counts["quarantined"] == 0
    assert set(events.rejected["reason"]) == {Reason.REJECTED_TITLE}
    assert counts["rows_read"] == counts["stored"] + counts["cascaded"] + counts["held_back"]


def test_links_join_omdb_by_imdb_id_and_tags_are_read_with_their_times(tmp_path):
    directory, _, tags = layouts.links_and_tags(tmp_path / "ml")
    source, titles, _, _ = read_all(directory)
    assert titles.counts["missing_omdb"] == 0 and titles.counts["omdb_unmatched"] == 0
    assert titles.titles.set_index("title_id").loc[1, "actors"][:2] == ["Tom Hanks", "Tim Allen"]
    read = source.read_tags(known_title_ids=titles.titles["title_id"], bounds=BOUNDS)
    assert len(read.tags) == len(tags) and read.rejected.empty
    assert read.tags["ts"].min() == pd.Timestamp(int(tags["timestamp"].min()), unit="s", tz="UTC")
    assert set(read.tags["tag"]) == set(tags["tag"])


@pytest.mark.parametrize("mode", ["quarantine", "fail"])
def test_implausible_timestamps_are_quarantined_and_never_move_the_span(tmp_path, mode):
    directory, expected = layouts.bad_timestamps(tmp_path / "ml")
    if mode == "fail":
        with pytest.raises(IngestionError, match=r"^ratings.csv line 100002: timestamp 1969-12-31T23:59:55\+00:00 "
                                                 r"is before the earliest plausible time 1990-01-01"):
            read_all(directory, mode=mode)
        return
    source, _, _, events = read_all(directory)
    assert_accounted(events, expected)
    assert events.rejected[["line", "reason"]].values.tolist() == [
        [100_002, Reason.IMPLAUSIBLE_TIMESTAMP], [100_003, Reason.IMPLAUSIBLE_TIMESTAMP], [100_004, Reason.FUTURE],
    ]
    assert source.event_span(BOUNDS) == SPAN
    assert source.event_span(None)[0] == date(1969, 12, 31)  # what the partitions were built on before


def test_timestamp_bounds_come_from_settings_and_the_run_clock():
    bounds = TimestampBounds.for_run(NOW, earliest="1998-01-01", future_slack_days=3)
    assert (bounds.earliest, bounds.latest) == (datetime(1998, 1, 1, tzinfo=timezone.utc),
                                                datetime(2026, 1, 4, tzinfo=timezone.utc))
    assert bounds.problem(datetime(1997, 12, 31, tzinfo=timezone.utc))[0] == Reason.IMPLAUSIBLE_TIMESTAMP
    assert bounds.problem(datetime(2026, 1, 4, 0, 0, 1, tzinfo=timezone.utc))[0] == Reason.FUTURE
    assert bounds.problem(datetime(2026, 1, 3, tzinfo=timezone.utc)) is None
    with pytest.raises(ValueError, match="'01/01/1990' is not an ISO-8601 date"):
        TimestampBounds.for_run(NOW, earliest="01/01/1990")


def test_sparse_last_weeks_still_store_every_good_rating(tmp_path):
    directory, expected = layouts.sparse_last_weeks(tmp_path / "ml")
    _, _, _, events = read_all(directory)
    assert_accounted(events, expected)
