"""A MovieLens-style directory as a source, mapped onto the canonical layout.

Every public layout is read: ``ratings.csv`` + ``movies.csv`` (100k, ml-latest, 20M, 25M) or the ``::``-separated
``ratings.dat`` + ``movies.dat`` (1M, 10M; latin-1). Optional, each absence counted, never fatal: ``users``,
``links.csv``, ``tags``, ``omdb.jsonl`` (OMDb metadata per movie), ``posters/<movieId>.jpg``. Every rating is a watch
event (the rating itself is ignored). A title's acquisition_date is the day of its first rating, since MovieLens has
no catalogue dates. The full mapping of each file onto the layout is in docs/design.md ("MovieLens").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rec_assets.sources.event_csv import EventColumns, first_event_day_by_title
from rec_assets.sources.file_source import FileSource, require_directory, require_file
from rec_assets.sources.frames import no_tags, title_counts, title_problem, titles_frame, users_read
from rec_assets.sources.line_readers import (
    DAT_SEPARATOR,
    CsvRow,
    JsonLine,
    decode_text,
    iter_lines,
    parse_int,
    read_jsonl,
    read_small_csv,
    read_small_dat,
    read_tags_rows,
    unique_id_rows,
)
from rec_assets.sources.protocol import TagsRead, TimestampBounds, TitlesRead, UsersRead
from rec_assets.sources.rejects import Reason, RejectLog

OMDB_FILE = "omdb.jsonl"
LINKS_FILE = "links.csv"
POSTERS_DIR = "posters"
RATING_FIELDS = ("userId", "movieId", "rating", "timestamp")
MOVIE_FIELDS = ("movieId", "title", "genres")
USER_FIELDS_DAT = ("userId", "gender", "age", "occupation", "zip_code")
TAG_FIELDS = ("userId", "movieId", "tag", "timestamp")
# MovieLens 1M's users.dat gives occupations as codes (its README).
OCCUPATION_CODES: dict[str, str] = {str(code): name for code, name in enumerate((
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "k-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
))}
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


@dataclass(frozen=True)
class MovieLensFile:
    """One logical file of the directory in whichever layout it has: ``.csv`` (a header) or ``.dat`` (``::``)."""

    path: Path
    fields: tuple[str, ...]  # the .dat layout's fields in order; a .csv file names its own in its header

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_dat(self) -> bool:
        return self.path.suffix == ".dat"

    def exists(self) -> bool:
        return self.path.is_file()

    def rows(self, required: tuple[str, ...], log: RejectLog) -> tuple[list[str], list[CsvRow]]:
        """Header (the .dat layout's field names) and good rows; bad rows go to ``log``."""
        if self.is_dat:
            return list(self.fields), read_small_dat(self.path, self.fields, log)
        return read_small_csv(self.path, list(required), log)

    def event_columns(self) -> EventColumns:
        return EventColumns(user_id="userId", title_id="movieId", timestamp="timestamp",
                            dat_fields=self.fields if self.is_dat else ())


def _layout_file(data_dir: Path, stem: str, fields: tuple[str, ...]) -> MovieLensFile:
    """``<stem>.csv`` if present, else ``<stem>.dat`` if present, else the (absent) ``.csv``."""
    for suffix in (".csv", ".dat"):
        path = data_dir / f"{stem}{suffix}"
        if path.is_file():
            return MovieLensFile(path, fields)
    return MovieLensFile(data_dir / f"{stem}.csv", fields)


def _imdb_number(value: Any) -> int | None:
    """An IMDb id as a number: ``tt0114709``, ``0114709`` and 114709 are the same title."""
    text = str(value).strip().lower().removeprefix("tt") if value is not None else ""
    return parse_int(text)


class MovieLensSource(FileSource):
    """A MovieLens-style directory (see the module docstring)."""

    name = "movielens"

    def __init__(self, data_dir: Path | str | None):
        self.data_dir = require_directory(data_dir, self.name)
        self.ratings = _layout_file(self.data_dir, "ratings", RATING_FIELDS)
        self.movies = _layout_file(self.data_dir, "movies", MOVIE_FIELDS)
        for file in (self.ratings, self.movies):
            if not file.exists():
                require_file(self.data_dir / f"{file.path.stem}.csv", f"{self.name} (.csv or .dat)")
        self.users = _layout_file(self.data_dir, "users", USER_FIELDS_DAT)
        self.tags = _layout_file(self.data_dir, "tags", TAG_FIELDS)
        self.links_path = self.data_dir / LINKS_FILE
        self.omdb_path = self.data_dir / OMDB_FILE
        self.posters_dir = self.data_dir / POSTERS_DIR

    def __repr__(self) -> str:
        return f"MovieLensSource({str(self.data_dir)!r})"

    def read_titles(self, mode: str = "quarantine", *, now: datetime | None = None) -> TitlesRead:
        log = RejectLog(mode, file_order=(self.movies.name, OMDB_FILE, LINKS_FILE))
        movies = self._movies(log)
        omdb, omdb_unmatched = self._omdb(log, movies, self._links(log))
        first_days = first_event_day_by_title(self.ratings.path, self.ratings.event_columns())
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
                # Name the line the bad value came from: OMDb's for its type or year, else the movies file's.
                if info is not None and (problem[0] == Reason.BAD_CATEGORY or year_origin == OMDB_FILE):
                    log.reject(OMDB_FILE, info.line, problem[0], problem[1], info.raw)
                else:
                    log.reject(self.movies.name, line, problem[0], problem[1], raw)
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
            **log.encoding_counts(),
        )
        return TitlesRead(titles=titles, rejected=rejected, counts=counts)

    def _movies(self, log: RejectLog) -> dict[int, tuple[int, str, str, str]]:
        """movieId -> (line, raw line, title, genres) of the movies file's good rows."""
        header, rows = self.movies.rows(MOVIE_FIELDS, log)
        id_col, title_col, genres_col = (header.index(name) for name in MOVIE_FIELDS)
        return {
            movie_id: (row.line, row.raw, row.fields[title_col], row.fields[genres_col])
            for movie_id, row in unique_id_rows(self.movies.name, rows, id_col, "movieId", "title", log)
        }

    def listed_title_ids(self) -> set[int]:
        """Every movieId the movies file lists, on good or rejected lines (to tell a cascade from an unknown
        title): the first field of every line, however malformed the rest is."""
        lines = iter_lines(self.movies.path)
        if not self.movies.is_dat:
            next(lines, None)  # the header
        ids = set()
        for _, raw in lines:
            text = decode_text(raw)[0]
            first = text.split(DAT_SEPARATOR if self.movies.is_dat else ",", 1)[0].strip().strip('"')
            if (movie_id := parse_int(first)) is not None:
                ids.add(movie_id)
        return ids

    def _links(self, log: RejectLog) -> dict[int, list[int]]:
        """IMDb number -> the movieIds links.csv gives it (several MovieLens ids can share one film); absent: {}."""
        if not self.links_path.is_file():
            return {}
        header, rows = read_small_csv(self.links_path, ["movieId", "imdbId"], log)
        movie_col, imdb_col = header.index("movieId"), header.index("imdbId")
        links: dict[int, list[int]] = {}
        for row in rows:
            movie_id, imdb = parse_int(row.fields[movie_col]), _imdb_number(row.fields[imdb_col])
            if movie_id is None:
                log.reject(LINKS_FILE, row.line, Reason.BAD_TITLE_ID,
                           f"movieId {row.fields[movie_col]!r} is not an integer id", row.raw)
            elif imdb is not None:
                links.setdefault(imdb, []).append(movie_id)
        return links

    def _omdb(
        self, log: RejectLog, movies: dict[int, Any], links: dict[int, list[int]]
    ) -> tuple[dict[int, JsonLine], int]:
        """movieId -> its OMDb line, and how many OMDb records name a movie that the movies file lacks. A record
        names its movie by ``movieId``, else by its IMDb id (the one it was fetched by, ``imdbId``, or OMDb's own,
        ``imdbID``) through links.csv: the first of that film's movieIds without a record yet."""
        if not self.omdb_path.is_file():
            return {}, 0
        records: dict[int, JsonLine] = {}
        unmatched = 0
        for item in read_jsonl(self.omdb_path, log):
            raw_id = item.value.get("movieId")
            if raw_id is None:
                linked = [movie_id for key in ("imdbId", "imdbID")
                          for movie_id in links.get(_imdb_number(item.value.get(key)), [])]
                raw_id = next((m for m in linked if m not in records), linked[0] if linked else None)
            movie_id = parse_int(raw_id)
            if raw_id is None:
                log.reject(OMDB_FILE, item.line, Reason.MISSING_TITLE_ID,
                           "movieId is missing" + (", and links.csv maps no movie to its IMDb id" if links else ""),
                           item.raw)
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
            year, year_origin = int(title_year.group(1)), "movies"
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
        if not self.users.exists():
            return users_read([], {name: [] for name in USER_FEATURES}, log, missing_file=True)
        header, rows = self.users.rows(("userId",), log)
        column = {name: header.index(name) for name in USER_FIELDS_DAT if name in header}

        def field(row, name: str) -> str:
            return row.fields[column[name]] if name in column else ""

        ids: list[int] = []
        features: dict[str, list[str | None]] = {name: [] for name in USER_FEATURES}
        for user_id, row in unique_id_rows(self.users.name, rows, column["userId"], "userId", "user", log):
            ids.append(user_id)
            occupation = field(row, "occupation")
            features["age_band"].append(age_band(field(row, "age")))
            features["gender"].append(field(row, "gender") or None)
            features["occupation"].append(OCCUPATION_CODES.get(occupation, occupation.lower()) or None)
            features["region"].append(zip_region(field(row, "zip_code")))
        return users_read(ids, features, log)

    def events_file(self) -> tuple[Path, EventColumns, str]:
        return self.ratings.path, self.ratings.event_columns(), self.users.name

    def read_tags(self, mode: str = "quarantine", *, known_title_ids: Any, bounds: TimestampBounds) -> TagsRead:
        if not self.tags.exists():
            return no_tags()
        log = RejectLog(mode)
        header, rows = self.tags.rows(("movieId", "tag", "timestamp"), log)
        read = read_tags_rows(
            self.tags.path, rows, tuple(header.index(name) for name in ("movieId", "tag", "timestamp")), log,
            known_title_ids=known_title_ids, bounds=bounds,
        )
        read.counts.update(missing_tags_file=0, **log.encoding_counts())
        return read
