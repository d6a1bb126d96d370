"""A MovieLens-style directory as a source, mapped onto the canonical layout.

Files (``ratings.csv`` and ``movies.csv`` required, the rest optional, each absence counted, never fatal):

- ``ratings.csv`` ``userId,movieId,rating,timestamp``: every rating is a watch event (the rating is ignored; the
  timestamp is Unix seconds, ISO-8601 also accepted).
- ``movies.csv`` ``movieId,title,genres``: the catalogue. Its ``|``-separated genres become ``subgenres``, namespaced
  ``ml:<genre>`` so they never collide with OMDb's top-level genres.
- ``omdb.jsonl``: OMDb metadata per ``movieId``. ``Genre`` -> genres, ``Actors``/``Director`` -> actors/directors,
  ``Rated`` -> maturity_rating, first ``Country`` -> country, ``Year`` (else ``Released``) -> release_year, ``Plot``
  -> synopsis, ``Type`` movie -> "movie", series/episode -> "tv", ``Title`` -> title. ``"N/A"`` or "" = unknown.
- ``users.csv`` ``userId,age,gender,occupation,zip_code`` -> user_id, age_band, gender, occupation, region.
- ``posters/<movieId>.jpg`` -> image.

A title's acquisition_date is the day of its first rating (never rated: None), since MovieLens has no catalogue
dates and a title cannot be watched before the service has it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rec_assets.sources.validation import (
    EventColumns,
    EventsRead,
    JsonLine,
    Reason,
    RejectLog,
    TitlesRead,
    UsersRead,
    directory_fingerprint,
    event_span_csv,
    first_event_day_by_title,
    parse_int,
    read_events_csv,
    read_jsonl,
    read_small_csv,
    require_directory,
    require_file,
    title_counts,
    title_problem,
    titles_frame,
    user_counts,
    users_frame,
)

RATINGS_FILE = "ratings.csv"
MOVIES_FILE = "movies.csv"
USERS_FILE = "users.csv"
OMDB_FILE = "omdb.jsonl"
POSTERS_DIR = "posters"
RATING_COLUMNS = EventColumns(user_id="userId", title_id="movieId", timestamp="timestamp")
SUBGENRE_PREFIX = "ml:"
# MovieLens placeholders for "no genre", not genres.
NO_GENRE = frozenset({"(no genres listed)", "unknown", ""})
OMDB_CATEGORY = {"movie": "movie", "series": "tv", "episode": "tv"}
USER_FEATURES: tuple[str, ...] = ("age_band", "gender", "occupation", "region")
# The MovieLens-1M age groups, so 100K and 1M users share one vocabulary.
AGE_BANDS: tuple[tuple[int, str], ...] = (
    (18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"), (56, "50-55"),
)
OLDEST_AGE_BAND = "56+"
_TITLE_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
_FOUR_DIGITS = re.compile(r"\d{4}")


def omdb_value(record: dict[str, Any], key: str) -> str | None:
    """An OMDb field as text, or None when absent, "N/A" or empty."""
    value = record.get(key)
    if value is None:
        return None
    value = str(value).strip()
    return None if value in ("", "N/A") else value


def omdb_list(record: dict[str, Any], key: str) -> list[str]:
    """A comma-separated OMDb field as a list ("N/A" entries dropped)."""
    value = omdb_value(record, key)
    if value is None:
        return []
    return [item.strip() for item in value.split(",") if item.strip() and item.strip() != "N/A"]


def age_band(age: str) -> str | None:
    years = parse_int(age)
    if years is None:
        return None
    for upper, band in AGE_BANDS:
        if years < upper:
            return band
    return OLDEST_AGE_BAND


def zip_region(zip_code: str) -> str | None:
    """US ZIP codes share their first digit within a national area; other postal codes keep their first letter."""
    code = zip_code.strip().upper()
    if not code:
        return None
    return f"zip-{code[0]}" if code[0].isdigit() else f"postal-{code[0]}"


class MovieLensSource:
    """A MovieLens-style directory (see the module docstring)."""

    name = "movielens"

    def __init__(self, data_dir: Path | str | None):
        self.data_dir = require_directory(data_dir, self.name)
        self.ratings_path = require_file(self.data_dir / RATINGS_FILE, self.name)
        self.movies_path = require_file(self.data_dir / MOVIES_FILE, self.name)
        self.users_path = self.data_dir / USERS_FILE
        self.omdb_path = self.data_dir / OMDB_FILE
        self.posters_dir = self.data_dir / POSTERS_DIR

    def __repr__(self) -> str:
        return f"MovieLensSource({str(self.data_dir)!r})"

    def read_titles(self, mode: str = "quarantine", *, now: datetime | None = None) -> TitlesRead:
        log = RejectLog(mode, file_order=(MOVIES_FILE, OMDB_FILE))
        movies = self._movies(log)
        omdb, omdb_unmatched = self._omdb(log, movies)
        first_days = first_event_day_by_title(self.ratings_path, RATING_COLUMNS)
        posters = {path.stem: path for path in self.posters_dir.glob("*.jpg")} if self.posters_dir.is_dir() else {}
        records = []
        category_defaulted = 0
        for movie_id, (line, raw, ml_title, ml_genres) in movies.items():
            info = omdb.get(movie_id)
            record, year_origin, defaulted = self._title_record(movie_id, ml_title, ml_genres, info)
            record["acquisition_date"] = first_days.get(movie_id)
            poster = posters.get(str(movie_id))
            record["image"] = str(poster.resolve()) if poster is not None else None
            problem = title_problem(record, now)
            if problem is not None:
                # Name the line the bad value came from: OMDb's for its type or year, else movies.csv's.
                if info is not None and (problem[0] == Reason.BAD_CATEGORY or year_origin == OMDB_FILE):
                    log.reject(OMDB_FILE, info.line, problem[0], problem[1], info.raw)
                else:
                    log.reject(MOVIES_FILE, line, problem[0], problem[1], raw)
                continue
            category_defaulted += defaulted
            records.append(record)
        titles = titles_frame(records)
        rejected = log.finish()
        counts = title_counts(titles, rejected)
        counts.update(
            missing_omdb=int(sum(1 for record in records if record["title_id"] not in omdb)),
            missing_omdb_file=int(not self.omdb_path.is_file()),
            missing_posters_dir=int(not self.posters_dir.is_dir()),
            omdb_unmatched=omdb_unmatched,
            category_defaulted=category_defaulted,
        )
        return TitlesRead(titles=titles, rejected=rejected, counts=counts)

    def _movies(self, log: RejectLog) -> dict[int, tuple[int, str, str, str]]:
        """movieId -> (line, raw line, title, genres) of movies.csv's good rows."""
        header, rows = read_small_csv(self.movies_path, ["movieId", "title", "genres"], log)
        id_col, title_col, genres_col = (header.index(name) for name in ("movieId", "title", "genres"))
        movies: dict[int, tuple[int, str, str, str]] = {}
        for row in rows:
            movie_id = parse_int(row.fields[id_col])
            if movie_id is None:
                log.reject(MOVIES_FILE, row.line, Reason.BAD_TITLE_ID,
                           f"movieId {row.fields[id_col]!r} is not an integer id", row.raw)
            elif movie_id in movies:
                log.reject(MOVIES_FILE, row.line, Reason.DUPLICATE_TITLE_ID,
                           f"movieId {movie_id} repeats line {movies[movie_id][0]}", row.raw)
            else:
                movies[movie_id] = (row.line, row.raw, row.fields[title_col], row.fields[genres_col])
        return movies

    def _omdb(self, log: RejectLog, movies: dict[int, Any]) -> tuple[dict[int, JsonLine], int]:
        """movieId -> its OMDb line, and how many OMDb records name a movie that movies.csv lacks."""
        if not self.omdb_path.is_file():
            return {}, 0
        records: dict[int, JsonLine] = {}
        unmatched = 0
        for item in read_jsonl(self.omdb_path, log):
            raw_id = item.value.get("movieId")
            movie_id = parse_int(raw_id)
            if raw_id is None:
                log.reject(OMDB_FILE, item.line, Reason.MISSING_TITLE_ID, "movieId is missing", item.raw)
            elif movie_id is None:
                log.reject(OMDB_FILE, item.line, Reason.BAD_TITLE_ID, f"movieId {raw_id!r} is not an integer id",
                           item.raw)
            elif movie_id in records:
                log.reject(OMDB_FILE, item.line, Reason.DUPLICATE_TITLE_ID,
                           f"movieId {movie_id} repeats line {records[movie_id].line}", item.raw)
            elif movie_id not in movies:
                unmatched += 1
            else:
                records[movie_id] = item
        return records, unmatched

    @staticmethod
    def _title_record(
        movie_id: int, ml_title: str, ml_genres: str, info: JsonLine | None
    ) -> tuple[dict[str, Any], str | None, int]:
        """The canonical title (without image and acquisition date), the file its year came from, and 1 when the
        category had to be defaulted to "movie" (no OMDb Type)."""
        omdb = info.value if info is not None else {}
        title_year = _TITLE_YEAR.search(ml_title)
        title = omdb_value(omdb, "Title") or (_TITLE_YEAR.sub("", ml_title).strip() or None)
        kind = omdb_value(omdb, "Type")
        category = OMDB_CATEGORY.get(kind.lower(), kind) if kind is not None else "movie"
        year, year_origin = None, None
        for text in (omdb_value(omdb, "Year"), omdb_value(omdb, "Released")):
            found = _FOUR_DIGITS.search(text or "")
            if found:
                year, year_origin = int(found.group()), OMDB_FILE
                break
        if year is None and title_year:
            year, year_origin = int(title_year.group(1)), MOVIES_FILE
        countries = omdb_list(omdb, "Country")
        record = {
            "title_id": movie_id,
            "title": title,
            "category": category,
            "genres": omdb_list(omdb, "Genre"),
            "subgenres": [SUBGENRE_PREFIX + genre.strip() for genre in ml_genres.split("|")
                          if genre.strip() not in NO_GENRE],
            "actors": omdb_list(omdb, "Actors"),
            "directors": omdb_list(omdb, "Director"),
            "maturity_rating": omdb_value(omdb, "Rated"),
            "country": countries[0] if countries else None,
            "release_year": year,
            "synopsis": omdb_value(omdb, "Plot"),
        }
        return record, year_origin, int(kind is None)

    def read_users(self, mode: str = "quarantine") -> UsersRead:
        log = RejectLog(mode)
        if not self.users_path.is_file():
            users = users_frame([], {name: [] for name in USER_FEATURES})
            rejected = log.finish()
            return UsersRead(users=users, rejected=rejected, counts=user_counts(users, rejected, missing_file=True))
        header, rows = read_small_csv(self.users_path, ["userId"], log)
        column = {name: header.index(name) for name in ("userId", "age", "gender", "occupation", "zip_code")
                  if name in header}

        def field(row, name: str) -> str:
            return row.fields[column[name]] if name in column else ""

        ids: list[int] = []
        features: dict[str, list[str | None]] = {name: [] for name in USER_FEATURES}
        line_of_id: dict[int, int] = {}
        for row in rows:
            user_id = parse_int(field(row, "userId"))
            if user_id is None:
                log.reject(USERS_FILE, row.line, Reason.BAD_USER_ID,
                           f"userId {field(row, 'userId')!r} is not an integer id", row.raw)
                continue
            if user_id in line_of_id:
                log.reject(USERS_FILE, row.line, Reason.DUPLICATE_USER_ID,
                           f"userId {user_id} repeats line {line_of_id[user_id]}", row.raw)
                continue
            line_of_id[user_id] = row.line
            ids.append(user_id)
            features["age_band"].append(age_band(field(row, "age")))
            features["gender"].append(field(row, "gender") or None)
            features["occupation"].append(field(row, "occupation").lower() or None)
            features["region"].append(zip_region(field(row, "zip_code")))
        users = users_frame(ids, features)
        rejected = log.finish()
        return UsersRead(users=users, rejected=rejected, counts=user_counts(users, rejected, missing_file=False))

    def read_events(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        known_title_ids: Any,
        known_user_ids: Any = None,
        now: datetime,
        mode: str = "quarantine",
    ) -> EventsRead:
        return read_events_csv(
            self.ratings_path, RATING_COLUMNS,
            start=start, end=end, known_title_ids=known_title_ids, known_user_ids=known_user_ids, now=now,
            mode=mode, users_file=USERS_FILE,
        )

    def event_span(self) -> tuple[date, date]:
        return event_span_csv(self.ratings_path, RATING_COLUMNS.timestamp)

    def fingerprint(self) -> str:
        return directory_fingerprint(self.data_dir)
