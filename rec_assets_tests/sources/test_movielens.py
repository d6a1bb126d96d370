"""MovieLens mapped onto the canonical layout: on the real shared data, without its optional files, and edge cases."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rec_assets.sources import layout
from rec_assets.sources.movielens import MovieLensSource, age_band, zip_region
from rec_assets.sources.protocol import Source
from rec_assets.sources.rejects import IngestionError, Reason

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "movielens-100k"
if not SHARED.is_dir():  # the worktree may sit elsewhere; the data lives at a fixed place on the dev machines
    SHARED = Path("/work/shared/data/movielens-100k")
needs_shared_data = pytest.mark.skipif(not SHARED.is_dir(), reason="MovieLens 100K is not at ../shared/data")


@pytest.fixture(scope="module")
def real():
    source = MovieLensSource(SHARED)
    titles = source.read_titles(mode="fail", now=NOW)
    users = source.read_users(mode="fail")
    events = source.read_events(start=None, end=None, known_title_ids=titles.titles["title_id"],
                                known_user_ids=users.known_user_ids, now=NOW, mode="fail")
    return source, titles, users, events


@needs_shared_data
def test_real_data_reads_whole_and_clean(real):
    source, titles, users, events = real
    assert isinstance(source, Source)
    assert events.events.num_rows == 100_000 and events.rows_read == 100_000 and events.rejected.empty
    assert len(titles.titles) == 1_682 and titles.rejected.empty
    assert len(users.users) == 943 and users.rejected.empty
    assert source.event_span() == (date(1997, 9, 20), date(1998, 4, 23))


@needs_shared_data
def test_real_titles_mapping_and_counts(real):
    _, titles_read, _, _ = real
    titles, counts = titles_read.titles, titles_read.counts
    assert list(titles.columns) == list(layout.TITLE_FIELDS)
    assert titles["image"].notna().sum() == 1_667 == counts["titles"] - counts["missing_image"]
    assert all(Path(image).is_absolute() and Path(image).is_file() for image in titles["image"].dropna())
    assert titles["synopsis"].notna().mean() > 0.98
    assert counts["missing_synopsis"] == 11
    assert titles["category"].value_counts().to_dict() == {"movie": 1_677, "tv": 5}
    assert (counts["category_movie"], counts["category_tv"]) == (1_677, 5)
    assert counts["missing_omdb"] == 0 and counts["missing_acquisition_date"] == 0
    subgenres = {genre for values in titles["subgenres"] for genre in values}
    assert all(genre.startswith("ml:") for genre in subgenres) and "ml:unknown" not in subgenres
    assert {"ml:Children's", "ml:Film-Noir"} <= subgenres
    genres = {genre for values in titles["genres"] for genre in values}
    assert "N/A" not in genres and {"Drama", "Comedy", "Sci-Fi"} <= genres

    toy_story = titles.set_index("title_id").loc[1]
    assert toy_story["title"] == "Toy Story"
    assert toy_story["genres"] == ["Animation", "Adventure", "Comedy", "Family", "Fantasy"]
    assert toy_story["subgenres"] == ["ml:Animation", "ml:Children's", "ml:Comedy"]
    assert toy_story["actors"] == ["Tom Hanks", "Tim Allen", "Don Rickles", "Jim Varney"]
    assert toy_story["directors"] == ["John Lasseter"]
    assert (toy_story["maturity_rating"], toy_story["country"], toy_story["release_year"]) == ("G", "USA", 1995)
    assert toy_story["image"].endswith("posters/1.jpg")
    # The Big Bang Theory: OMDb Year "2007–2019", Type series.
    big_bang = titles.set_index("title_id").loc[1235]
    assert (big_bang["category"], big_bang["release_year"]) == ("tv", 2007)


@needs_shared_data
def test_real_acquisition_date_is_the_day_of_the_first_rating(real):
    _, titles_read, _, events_read = real
    events = events_read.events.to_pandas()
    first_days = events.groupby("title_id")["ts"].min().dt.tz_localize(None).dt.normalize()
    acquired = titles_read.titles.set_index("title_id")["acquisition_date"]
    assert (acquired.loc[first_days.index] == first_days.astype(acquired.dtype)).all()


@needs_shared_data
def test_real_users_have_categorical_features(real):
    _, _, users_read, _ = real
    users = users_read.users
    assert list(users.columns) == ["user_id", "age_band", "gender", "occupation", "region"]
    assert users["user_id"].dtype == np.int64 and users["user_id"].is_unique
    first = users.set_index("user_id").loc[1]
    assert first.to_dict() == {"age_band": "18-24", "gender": "M", "occupation": "technician", "region": "zip-8"}
    assert set(users["gender"]) == {"M", "F"}
    assert users["region"].str.startswith("postal-").sum() == 18  # Canadian postal codes
    assert users_read.counts["missing_age_band"] == 0


@needs_shared_data
def test_without_optional_files_everything_is_counted_and_nothing_crashes(tmp_path):
    for name in ("ratings.csv", "movies.csv"):
        shutil.copy(SHARED / name, tmp_path / name)
    source = MovieLensSource(tmp_path)
    titles_read = source.read_titles(mode="fail", now=NOW)
    users_read = source.read_users(mode="fail")
    counts = titles_read.counts
    assert (counts["missing_omdb_file"], counts["missing_posters_dir"]) == (1, 1)
    assert counts["missing_omdb"] == counts["missing_image"] == counts["missing_synopsis"] == 1_682
    assert counts["missing_genres"] == counts["missing_actors"] == 1_682
    assert titles_read.titles["image"].isna().all()
    # Without OMDb the title and year come from movies.csv, the category defaults to movie.
    toy_story = titles_read.titles.set_index("title_id").loc[1]
    assert (toy_story["title"], toy_story["release_year"], toy_story["category"]) == ("Toy Story", 1995, "movie")
    assert counts["category_defaulted"] == 1_682
    assert users_read.counts["missing_users_file"] == 1 and users_read.users.empty
    assert users_read.known_user_ids is None
    events = source.read_events(start=None, end=None, known_title_ids=titles_read.titles["title_id"],
                                known_user_ids=users_read.known_user_ids, now=NOW, mode="fail")
    assert events.events.num_rows == 100_000


def small_movielens(directory: Path, *, ratings: str | None = None, omdb: list | None = None,
                    users: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Animation|Children's|Comedy\n"
        '2,"Shawshank Redemption, The (1994)",(no genres listed)\n'
        "3,Some Show (2007),unknown\n"
        "4,Unrated Oddity (1998),Drama\n"
    )
    (directory / "ratings.csv").write_text(ratings if ratings is not None else (
        "userId,movieId,rating,timestamp\n"
        "1,1,5,874965758\n"  # 1997-09-22 22:02:38 UTC
        "2,1,3,874724710\n"  # 1997-09-20 03:05:10 UTC: title 1's first rating
        "1,3,4,891000000\n"
    ))
    omdb_records = omdb if omdb is not None else [
        {"movieId": 1, "Title": "Toy Story", "Year": "1995", "Rated": "G", "Released": "22 Nov 1995",
         "Genre": "Animation, Comedy", "Director": "John Lasseter", "Actors": "Tom Hanks, Tim Allen",
         "Plot": "Toys.", "Country": "USA, UK", "Type": "movie"},
        {"movieId": 2, "Title": "The Shawshank Redemption", "Year": "N/A", "Rated": "N/A", "Released": "14 Oct 1994",
         "Genre": "N/A", "Director": "N/A", "Actors": "N/A", "Plot": "N/A", "Country": "N/A", "Type": "movie"},
        {"movieId": 3, "Title": "Some Show", "Year": "2007–2019", "Genre": "Comedy", "Type": "series",
         "Plot": "", "Country": "USA"},
        {"movieId": 99, "Title": "Not in movies.csv", "Type": "movie"},
    ]
    (directory / "omdb.jsonl").write_text("".join(json.dumps(record) + "\n" for record in omdb_records))
    (directory / "posters").mkdir(exist_ok=True)
    (directory / "posters" / "1.jpg").write_bytes(b"\xff\xd8")
    if users is not None:
        (directory / "users.csv").write_text(users)
    return directory


def test_mapping_of_omdb_and_movies_fields(tmp_path):
    titles_read = MovieLensSource(small_movielens(tmp_path)).read_titles(mode="fail", now=NOW)
    titles = titles_read.titles.set_index("title_id")
    toy_story, shawshank, show, oddity = (titles.loc[i] for i in (1, 2, 3, 4))
    assert toy_story["genres"] == ["Animation", "Comedy"]
    assert toy_story["subgenres"] == ["ml:Animation", "ml:Children's", "ml:Comedy"]
    assert toy_story["country"] == "USA"  # the first listed country
    assert toy_story["acquisition_date"] == pd.Timestamp("1997-09-20")
    assert toy_story["image"] == str((tmp_path / "posters" / "1.jpg").resolve())
    # "N/A" means unknown; the year falls back to Released.
    assert shawshank["genres"] == [] and shawshank["actors"] == [] and shawshank["directors"] == []
    assert shawshank["maturity_rating"] is None and shawshank["synopsis"] is None and shawshank["country"] is None
    assert shawshank["subgenres"] == [] and shawshank["release_year"] == 1994
    assert pd.isna(shawshank["acquisition_date"]) and shawshank["image"] is None  # never rated, no poster
    assert (show["category"], show["release_year"], show["synopsis"], show["subgenres"]) == ("tv", 2007, None, [])
    # No OMDb record: title without the year suffix, year from the title, category defaulted.
    assert (oddity["title"], oddity["release_year"], oddity["category"]) == ("Unrated Oddity", 1998, "movie")
    assert titles_read.counts["missing_omdb"] == 1
    assert titles_read.counts["omdb_unmatched"] == 1
    assert titles_read.counts["category_defaulted"] == 1
    assert titles_read.counts["missing_acquisition_date"] == 2


@pytest.mark.parametrize(
    ("record_line", "file", "line", "reason", "detail"),
    [
        pytest.param('{"movieId": 1, "Type": "game"}', "omdb.jsonl", 1, Reason.BAD_CATEGORY,
                     "category 'game' is not movie or tv", id="omdb-type"),
        pytest.param('{"movieId": 1, "Year": "1066", "Type": "movie"}', "omdb.jsonl", 1, Reason.IMPLAUSIBLE_YEAR,
                     "release_year 1066 is outside 1880..2028", id="omdb-year"),
        pytest.param("{movieId: 1}", "omdb.jsonl", 1, Reason.NOT_JSON,
                     "not a JSON line (Expecting property name enclosed in double quotes)", id="omdb-not-json"),
        pytest.param('{"Title": "no id"}', "omdb.jsonl", 1, Reason.MISSING_TITLE_ID, "movieId is missing",
                     id="omdb-no-id"),
    ],
)
@pytest.mark.parametrize("mode", ["quarantine", "fail"])
def test_bad_omdb_lines_by_mode(tmp_path, record_line, file, line, reason, detail, mode):
    directory = small_movielens(tmp_path)
    (directory / "omdb.jsonl").write_text(record_line + "\n")
    source = MovieLensSource(directory)
    if mode == "fail":
        with pytest.raises(IngestionError) as raised:
            source.read_titles(mode=mode, now=NOW)
        assert str(raised.value) == f"{file} line {line}: {detail}"
        return
    rejected = source.read_titles(mode=mode, now=NOW).rejected
    assert rejected[["file", "line", "reason", "detail"]].values.tolist() == [[file, line, reason, detail]]


@pytest.mark.parametrize("mode", ["quarantine", "fail"])
def test_bad_movies_rows_by_mode(tmp_path, mode):
    directory = small_movielens(tmp_path)
    with open(directory / "movies.csv", "ab") as movies:
        movies.write(b"x5,Bad Id (1999),Drama\n1,Toy Story again (1995),Comedy\n6,Bytes \xff (1999),Drama\n")
    source = MovieLensSource(directory)
    if mode == "fail":
        with pytest.raises(IngestionError, match=r"^movies.csv line 6: movieId 'x5' is not an integer id$"):
            source.read_titles(mode=mode, now=NOW)
        return
    titles_read = source.read_titles(mode=mode, now=NOW)
    assert titles_read.rejected[["file", "line", "reason"]].values.tolist() == [
        ["movies.csv", 6, Reason.BAD_TITLE_ID], ["movies.csv", 7, Reason.DUPLICATE_TITLE_ID],
    ]
    # A byte that is not UTF-8 is decoded by the cp1252 fallback and counted: the title stays.
    assert titles_read.titles["title_id"].tolist() == [1, 2, 3, 4, 6]
    assert titles_read.titles.set_index("title_id").loc[6, "title"] == "Bytes ÿ"
    assert titles_read.counts["fallback_decoded_lines:movies.csv"] == 1


def test_ratings_errors_name_ratings_csv_line_and_reason(tmp_path):
    ratings = ("userId,movieId,rating,timestamp\n1,1,5,874965758\n"
               + "".join(f"2,1,3,{874724710 + second}\n" for second in range(54))  # lines 3..56
               + "3,1,4,abc\n" + "1,1,5,874965758\n")  # lines 57, 58 (a duplicate of line 2)
    source = MovieLensSource(small_movielens(tmp_path, ratings=ratings))
    with pytest.raises(IngestionError, match=r"^ratings.csv line 57: timestamp 'abc' does not parse$"):
        source.read_events(start=None, end=None, known_title_ids=[1, 2, 3, 4], known_user_ids=None, now=NOW,
                           mode="fail")
    quarantined = source.read_events(start=None, end=None, known_title_ids=[1, 2, 3, 4], known_user_ids=None,
                                     now=NOW)
    assert quarantined.rejected[["line", "reason", "raw"]].values.tolist() == [
        [57, Reason.BAD_TIMESTAMP, "3,1,4,abc"], [58, Reason.DUPLICATE, "1,1,5,874965758"],
    ]
    assert quarantined.events.num_rows == 55


def test_missing_ratings_columns_are_fatal(tmp_path):
    source = MovieLensSource(small_movielens(tmp_path, ratings="userId,itemId,rating,timestamp\n1,1,5,874965758\n"))
    with pytest.raises(IngestionError, match="ratings.csv: missing required columns movieId"):
        source.read_events(start=None, end=None, known_title_ids=[1], known_user_ids=None, now=NOW, mode="quarantine")


def test_users_mapping_and_bad_rows(tmp_path):
    users = ("userId,age,gender,occupation,zip_code\n"
             "1,17,F,Student,02139\n"
             "2,56,M,retired,T8H1N\n"
             "3,,M,,\n"
             "x,30,F,writer,10001\n"
             "1,40,F,doctor,90210\n")
    users_read = MovieLensSource(small_movielens(tmp_path, users=users)).read_users()
    assert users_read.users.to_dict("list") == {
        "user_id": [1, 2, 3], "age_band": ["under 18", "56+", None], "gender": ["F", "M", "M"],
        "occupation": ["student", "retired", None], "region": ["zip-0", "postal-T", None],
    }
    assert users_read.rejected[["line", "reason"]].values.tolist() == [
        [5, Reason.BAD_USER_ID], [6, Reason.DUPLICATE_USER_ID],
    ]
    assert users_read.counts["missing_age_band"] == 1


def test_unknown_users_are_rejected_when_a_users_file_exists(tmp_path):
    source = MovieLensSource(small_movielens(tmp_path, users="userId,age,gender,occupation,zip_code\n1,30,F,x,1\n"))
    events = source.read_events(start=None, end=None, known_title_ids=[1, 2, 3, 4],
                                known_user_ids=source.read_users().known_user_ids, now=NOW)
    assert events.rejected[["file", "line", "reason", "detail"]].values.tolist() == [
        ["ratings.csv", 3, Reason.UNKNOWN_USER, "userId 2 is not in users.csv"]
    ]


@pytest.mark.parametrize(("age", "band"), [("0", "under 18"), ("18", "18-24"), ("24", "18-24"), ("25", "25-34"),
                                           ("49", "45-49"), ("55", "50-55"), ("56", "56+"), ("old", None)])
def test_age_bands(age, band):
    assert age_band(age) == band


def test_zip_region():
    assert (zip_region("85711"), zip_region("v3n4p"), zip_region(" ")) == ("zip-8", "postal-V", None)
