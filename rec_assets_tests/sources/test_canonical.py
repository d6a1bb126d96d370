"""The canonical layout read back through the validation path, and open_source's choice of source."""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rec_assets.sources import layout
from rec_assets.sources.canonical import CanonicalSource, open_source
from rec_assets.sources.movielens import MovieLensSource
from rec_assets.sources.protocol import Source
from rec_assets.sources.rejects import IngestionError, Reason

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

TITLES = [
    {
        "title_id": 1, "title": "Harbour Lights", "category": "movie", "genres": ["Drama"],
        "subgenres": ["Coastal drama"], "actors": ["Ada Vale", "Ben Orr"], "directors": ["Cy Moss"],
        "maturity_rating": "PG", "country": "Ireland", "release_year": 2019, "acquisition_date": "2024-03-04",
        "synopsis": "A lighthouse keeper's last winter.", "image": "images/1.jpg",
    },
    {
        "title_id": 2, "title": "Night Shift", "category": "tv", "genres": ["Comedy", "Crime"], "subgenres": [],
        "actors": [], "directors": [], "maturity_rating": None, "country": None, "release_year": None,
        "acquisition_date": None, "synopsis": None, "image": None,
    },
    # Minimal: optional keys absent, image named but not on disk.
    {"title_id": 3, "title": "Cold Open", "category": "movie", "image": "images/missing.jpg"},
]


def write_layout(directory: Path, titles=TITLES, users: str | None = "user_id,country,plan\n7,IE,basic\n8,,premium\n",
                 events: str = "user_id,title_id,timestamp\n7,1,2025-01-06T10:00:00Z\n8,2,2025-01-07T10:00:00Z\n"
                                "7,3,1736330400\n") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "images").mkdir(exist_ok=True)
    (directory / "images" / "1.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (directory / layout.TITLES_FILE).write_text("".join(json.dumps(title) + "\n" for title in titles))
    if users is not None:
        (directory / layout.USERS_FILE).write_text(users)
    (directory / layout.EVENTS_FILE).write_text(events)
    return directory


def test_round_trip_of_a_hand_written_layout(tmp_path):
    source = CanonicalSource(write_layout(tmp_path / "catalog"))
    assert isinstance(source, Source)
    assert source.name == "canonical"

    titles_read = source.read_titles(mode="fail", now=NOW)
    titles = titles_read.titles
    assert list(titles.columns) == list(layout.TITLE_FIELDS)
    assert titles["title_id"].dtype == np.int64
    assert titles["release_year"].dtype == pd.Int64Dtype()
    assert titles["acquisition_date"].dtype == np.dtype("datetime64[us]")
    first, second, third = (titles.iloc[i] for i in range(3))
    assert first["genres"] == ["Drama"] and first["actors"] == ["Ada Vale", "Ben Orr"]
    assert first["release_year"] == 2019
    assert first["acquisition_date"] == pd.Timestamp("2024-03-04")
    assert first["image"] == str((tmp_path / "catalog" / "images" / "1.jpg").resolve())
    assert Path(first["image"]).is_absolute()
    assert second["category"] == "tv" and second["subgenres"] == [] and second["synopsis"] is None
    assert pd.isna(second["release_year"]) and pd.isna(second["acquisition_date"])
    assert third["genres"] == [] and third["image"] is None and third["maturity_rating"] is None
    assert titles_read.rejected.empty
    assert titles_read.counts["titles"] == 3
    assert titles_read.counts["category_tv"] == 1
    assert titles_read.counts["missing_image"] == 2
    assert titles_read.counts["image_file_not_found"] == 1
    assert titles_read.counts["missing_synopsis"] == 2

    users_read = source.read_users(mode="fail")
    assert users_read.users.to_dict("list") == {
        "user_id": [7, 8], "country": ["IE", None], "plan": ["basic", "premium"],
    }
    assert users_read.users["user_id"].dtype == np.int64
    assert users_read.counts == {"users": 2, "rejected": 0, "missing_users_file": 0, "missing_country": 1,
                                 "missing_plan": 0}

    events = source.read_events(
        start=datetime(2025, 1, 7, tzinfo=timezone.utc), end=None, known_title_ids=titles["title_id"],
        known_user_ids=users_read.known_user_ids, now=NOW, mode="fail",
    )
    assert events.events.to_pydict() == {
        "user_id": [8, 7], "title_id": [2, 3],
        "ts": [datetime(2025, 1, 7, 10, tzinfo=timezone.utc), datetime(2025, 1, 8, 10, tzinfo=timezone.utc)],
    }
    assert events.rows_read == 3
    assert source.event_span() == (date(2025, 1, 6), date(2025, 1, 9))


def test_fingerprint_changes_with_the_files_and_only_with_them(tmp_path):
    directory = write_layout(tmp_path / "catalog")
    source = CanonicalSource(directory)
    before = source.fingerprint()
    assert source.fingerprint() == before
    events = directory / layout.EVENTS_FILE
    events.write_text(events.read_text() + "8,1,2025-01-09T00:00:00Z\n")
    assert source.fingerprint() != before


BAD_TITLE_LINES = [
    pytest.param("{not json", Reason.NOT_JSON, "not a JSON line (Expecting property name enclosed in double quotes)",
                 id="not-json"),
    pytest.param("[1, 2]", Reason.NOT_JSON, "a JSON list, not an object", id="not-an-object"),
    pytest.param('{"title": "No id", "category": "movie"}', Reason.MISSING_TITLE_ID, "title_id is missing",
                 id="missing-id"),
    pytest.param('{"title_id": "x7", "category": "movie"}', Reason.BAD_TITLE_ID, "title_id 'x7' is not an integer id",
                 id="non-numeric-id"),
    pytest.param('{"title_id": 1, "category": "movie"}', Reason.DUPLICATE_TITLE_ID, "title_id 1 repeats line 1",
                 id="duplicate-id"),
    pytest.param('{"title_id": 9, "category": "film"}', Reason.BAD_CATEGORY, "category 'film' is not movie or tv",
                 id="bad-category"),
    pytest.param('{"title_id": 9}', Reason.BAD_CATEGORY, "category None is not movie or tv", id="no-category"),
    pytest.param('{"title_id": 9, "category": "movie", "release_year": 1700}', Reason.IMPLAUSIBLE_YEAR,
                 "release_year 1700 is outside 1880..2028", id="year-too-early"),
    pytest.param('{"title_id": 9, "category": "movie", "release_year": 2029}', Reason.IMPLAUSIBLE_YEAR,
                 "release_year 2029 is outside 1880..2028", id="year-too-late"),
    pytest.param('{"title_id": 9, "category": "movie", "release_year": "soon"}', Reason.BAD_FIELD,
                 "release_year 'soon' is not an integer", id="year-not-a-number"),
    pytest.param('{"title_id": 9, "category": "movie", "genres": "Drama"}', Reason.BAD_FIELD,
                 "genres 'Drama' is not a list of strings", id="list-field-is-text"),
    pytest.param('{"title_id": 9, "category": "movie", "acquisition_date": "04/03/2024"}', Reason.BAD_FIELD,
                 "acquisition_date '04/03/2024' is not a YYYY-MM-DD day", id="bad-date"),
]


def titles_with_bad_line(tmp_path: Path, bad_line: str | bytes) -> CanonicalSource:
    directory = write_layout(tmp_path / "catalog")
    good = (directory / layout.TITLES_FILE).read_bytes().splitlines(keepends=True)
    bad = bad_line if isinstance(bad_line, bytes) else bad_line.encode()
    # The bad line sits at line 3, after two good titles, before the third.
    (directory / layout.TITLES_FILE).write_bytes(b"".join(good[:2]) + bad + b"\n" + good[2])
    return CanonicalSource(directory)


@pytest.mark.parametrize(("bad_line", "reason", "detail"), BAD_TITLE_LINES)
def test_bad_title_lines_are_quarantined_with_line_and_reason(tmp_path, bad_line, reason, detail):
    titles_read = titles_with_bad_line(tmp_path, bad_line).read_titles(now=NOW)
    assert titles_read.titles["title_id"].tolist() == [1, 2, 3]
    assert titles_read.rejected[["file", "line", "reason", "detail"]].values.tolist() == [
        ["titles.jsonl", 3, reason, detail]
    ]
    assert titles_read.counts["rejected"] == 1


@pytest.mark.parametrize(("bad_line", "reason", "detail"), BAD_TITLE_LINES)
def test_bad_title_lines_fail_the_read_in_fail_mode(tmp_path, bad_line, reason, detail):
    with pytest.raises(IngestionError) as raised:
        titles_with_bad_line(tmp_path, bad_line).read_titles(mode="fail", now=NOW)
    assert str(raised.value) == f"titles.jsonl line 3: {detail}"
    assert raised.value.reason == reason


def test_a_title_in_latin1_is_kept_decoded_and_counted(tmp_path):
    # "Am\xe9lie" in latin-1 inside an otherwise UTF-8 file: the fallback decodes it, the title is not lost.
    source = titles_with_bad_line(tmp_path, b'{"title_id": 9, "category": "movie", "title": "Am\xe9lie"}')
    titles_read = source.read_titles(mode="fail", now=NOW)
    assert titles_read.titles["title_id"].tolist() == [1, 2, 9, 3]
    assert titles_read.titles.set_index("title_id").loc[9, "title"] == "Amélie"
    assert titles_read.counts["fallback_decoded_lines:titles.jsonl"] == 1


BAD_USER_LINES = [
    pytest.param("x9,IE,basic", Reason.BAD_USER_ID, "user_id 'x9' is not an integer id", id="non-numeric"),
    pytest.param("7,UK,basic", Reason.DUPLICATE_USER_ID, "user_id 7 repeats line 2", id="duplicate"),
    pytest.param("9,IE", Reason.FIELD_COUNT, "expected 3 fields, found 2", id="field-count"),
]


@pytest.mark.parametrize(("bad_line", "reason", "detail"), BAD_USER_LINES)
@pytest.mark.parametrize("mode", ["quarantine", "fail"])
def test_bad_user_rows_by_mode(tmp_path, bad_line, reason, detail, mode):
    users = f"user_id,country,plan\n7,IE,basic\n{bad_line}\n8,,premium\n"
    source = CanonicalSource(write_layout(tmp_path / "catalog", users=users))
    if mode == "fail":
        with pytest.raises(IngestionError, match=f"^users.csv line 3: {detail}$"):
            source.read_users(mode=mode)
        return
    users_read = source.read_users(mode=mode)
    assert users_read.users["user_id"].tolist() == [7, 8]
    assert users_read.rejected[["file", "line", "reason", "detail"]].values.tolist() == [
        ["users.csv", 3, reason, detail]
    ]


def test_users_file_without_user_id_column_is_fatal(tmp_path):
    source = CanonicalSource(write_layout(tmp_path / "catalog", users="id,country\n7,IE\n"))
    with pytest.raises(IngestionError, match="users.csv: missing required columns user_id"):
        source.read_users()


def test_without_a_users_file_nobody_is_an_unknown_user(tmp_path):
    source = CanonicalSource(write_layout(tmp_path / "catalog", users=None))
    users_read = source.read_users()
    assert users_read.users.empty and list(users_read.users.columns) == ["user_id"]
    assert users_read.counts["missing_users_file"] == 1
    assert users_read.known_user_ids is None
    events = source.read_events(start=None, end=None, known_title_ids=[1, 2, 3],
                                known_user_ids=users_read.known_user_ids, now=NOW)
    assert events.events.num_rows == 3 and events.rejected.empty


def test_events_of_titles_missing_from_the_catalogue_are_rejected_by_line(tmp_path):
    events = "user_id,title_id,timestamp\n7,1,2025-01-06T10:00:00Z\n7,42,2025-01-06T11:00:00Z\n"
    source = CanonicalSource(write_layout(tmp_path / "catalog", events=events))
    with pytest.raises(IngestionError, match="^events.csv line 3: title_id 42 is not in the catalogue$"):
        source.read_events(start=None, end=None, known_title_ids=[1, 2, 3], known_user_ids=[7, 8], now=NOW,
                           mode="fail")


def test_open_source_by_kind(tmp_path):
    directory = write_layout(tmp_path / "catalog")
    assert isinstance(open_source("canonical", directory), CanonicalSource)
    assert isinstance(open_source("canonical", str(directory)), CanonicalSource)
    movielens = tmp_path / "ml"
    movielens.mkdir()
    (movielens / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    (movielens / "movies.csv").write_text("movieId,title,genres\n")
    assert isinstance(open_source("movielens", movielens), MovieLensSource)


def test_open_source_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown source kind 'netflix'; expected one of canonical, movielens"):
        open_source("netflix", tmp_path)
    with pytest.raises(IngestionError, match="needs a data directory"):
        open_source("canonical", None)
    with pytest.raises(IngestionError, match="data directory .*nowhere does not exist"):
        open_source("canonical", tmp_path / "nowhere")
    directory = write_layout(tmp_path / "catalog")
    os.remove(directory / layout.EVENTS_FILE)
    with pytest.raises(IngestionError, match="required file events.csv is missing"):
        open_source("canonical", directory)
    with pytest.raises(IngestionError, match="required file ratings.csv is missing"):
        open_source("movielens", directory)
