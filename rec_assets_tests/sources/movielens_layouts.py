"""MovieLens directories as users bring them, built from the shared 100k bundle in a temp dir: no users file, the
1M/10M `.dat` layout in latin-1, a latin-1 title inside a UTF-8 file, links + tags, bad timestamps, sparse last weeks.

Each builder returns the directory and what a reader must find there, computed from the files it wrote.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rec_assets.sources.movielens import OCCUPATION_CODES

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "movielens-100k"
if not SHARED.is_dir():  # the worktree may sit elsewhere; the data lives at a fixed place on the dev machines
    SHARED = Path("/work/shared/data/movielens-100k")

# The bundle's last complete week ends on Monday 1998-04-20; 849 ratings fall after it.
LAST_COMPLETE_WEEK_END = pd.Timestamp("1998-04-20", tz="UTC")
RATINGS_AFTER_LAST_COMPLETE_WEEK = 849
LATIN1_TITLE_ID = 1  # Toy Story gets an accent: "Töy Story (1995)" in latin-1 bytes


@dataclass
class Expected:
    """What the directory holds: ratings rows, the good ones among them, and the bad ones by reason."""

    ratings_rows: int
    good_ratings: int
    bad_by_reason: dict[str, int] = field(default_factory=dict)
    held_back: int = RATINGS_AFTER_LAST_COMPLETE_WEEK  # good ratings after the last complete week
    titles: int = 1_682

    @property
    def stored_by_full_ingest(self) -> int:
        return self.good_ratings - self.held_back


def _ratings() -> pd.DataFrame:
    return pd.read_csv(SHARED / "ratings.csv")


def _posters(directory: Path) -> None:
    os.symlink(SHARED / "posters", directory / "posters")


def without_users_file(directory: Path) -> tuple[Path, Expected]:
    directory.mkdir(parents=True)
    for name in ("ratings.csv", "movies.csv", "omdb.jsonl"):
        (directory / name).write_bytes((SHARED / name).read_bytes())
    _posters(directory)
    return directory, Expected(ratings_rows=100_000, good_ratings=100_000)


def dat_latin1(directory: Path) -> tuple[Path, Expected]:
    """MovieLens 1M's layout: ratings.dat, movies.dat, users.dat, '::'-separated, latin-1, no header."""
    directory.mkdir(parents=True)
    ratings = _ratings()
    (directory / "ratings.dat").write_text(
        "".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in ratings.itertuples(index=False)), encoding="latin-1")
    with open(SHARED / "movies.csv", newline="", encoding="utf-8") as handle:
        movies = list(csv.reader(handle))[1:]
    (directory / "movies.dat").write_text("".join(f"{i}::{t}::{g}\n" for i, t, g in movies), encoding="latin-1")
    codes = {name: code for code, name in OCCUPATION_CODES.items()}
    users = pd.read_csv(SHARED / "users.csv", dtype=str)
    (directory / "users.dat").write_text("".join(
        f"{u.userId}::{u.gender}::{u.age}::{codes.get(u.occupation, '0')}::{u.zip_code}\n"
        for u in users.itertuples(index=False)), encoding="latin-1")
    (directory / "omdb.jsonl").write_bytes((SHARED / "omdb.jsonl").read_bytes())
    return directory, Expected(ratings_rows=len(ratings), good_ratings=len(ratings))


def latin1_title_in_utf8_file(directory: Path) -> tuple[Path, Expected]:
    directory.mkdir(parents=True)
    lines = (SHARED / "movies.csv").read_bytes().splitlines(keepends=True)
    assert lines[LATIN1_TITLE_ID].startswith(b"1,Toy Story (1995),")
    lines[LATIN1_TITLE_ID] = lines[LATIN1_TITLE_ID].replace(b"Toy Story", "Töy Story".encode("latin-1"))
    (directory / "movies.csv").write_bytes(b"".join(lines))
    for name in ("ratings.csv", "users.csv"):
        (directory / name).write_bytes((SHARED / name).read_bytes())
    return directory, Expected(ratings_rows=100_000, good_ratings=100_000)


def links_and_tags(directory: Path) -> tuple[Path, Expected, pd.DataFrame]:
    """ml-latest's layout: OMDb records keyed by IMDb id only (joined through links.csv), and a tags.csv whose
    tags are each title's first MovieLens genre, applied at the time of three of its ratings."""
    directory.mkdir(parents=True)
    for name in ("ratings.csv", "movies.csv", "users.csv"):
        (directory / name).write_bytes((SHARED / name).read_bytes())
    records = [json.loads(line) for line in (SHARED / "omdb.jsonl").read_text().splitlines() if line.strip()]
    links = pd.DataFrame({"movieId": [r["movieId"] for r in records], "imdbId": [r["imdbId"] for r in records],
                          "tmdbId": ""})
    links.to_csv(directory / "links.csv", index=False)
    with open(directory / "omdb.jsonl", "w") as handle:
        for record in records:
            handle.write(json.dumps({k: v for k, v in record.items() if k != "movieId"}) + "\n")
    movies = pd.read_csv(SHARED / "movies.csv")
    first_genre = dict(zip(movies["movieId"], movies["genres"].str.split("|").str[0].str.lower()))
    applications = _ratings().sort_values(["movieId", "timestamp"]).groupby("movieId").head(3)
    tags = pd.DataFrame({"userId": applications["userId"], "movieId": applications["movieId"],
                         "tag": applications["movieId"].map(first_genre), "timestamp": applications["timestamp"]})
    tags.to_csv(directory / "tags.csv", index=False)
    return directory, Expected(ratings_rows=100_000, good_ratings=100_000), tags


BAD_TIMESTAMPS = {
    "-5": "implausible_timestamp",  # 1969-12-31
    "500000000": "implausible_timestamp",  # 1985-11-05, before 1990-01-01
    "4102444800": "future",  # 2100-01-01
}


def bad_timestamps(directory: Path) -> tuple[Path, Expected]:
    directory.mkdir(parents=True)
    for name in ("movies.csv", "users.csv"):
        (directory / name).write_bytes((SHARED / name).read_bytes())
    text = (SHARED / "ratings.csv").read_text()
    text += "".join(f"1,1,4,{stamp}\n" for stamp in BAD_TIMESTAMPS)
    (directory / "ratings.csv").write_text(text)
    reasons: dict[str, int] = {}
    for reason in BAD_TIMESTAMPS.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    return directory, Expected(ratings_rows=100_003, good_ratings=100_000, bad_by_reason=reasons)


def sparse_last_weeks(directory: Path, keep_users: int = 3) -> tuple[Path, Expected]:
    """The last four complete weeks keep the ratings of only ``keep_users`` users (like a real history whose
    recent weeks are nearly empty), so the latest weeks cannot be trained or evaluated."""
    directory.mkdir(parents=True)
    for name in ("movies.csv", "users.csv"):
        (directory / name).write_bytes((SHARED / name).read_bytes())
    ratings = _ratings()
    moment = pd.to_datetime(ratings["timestamp"], unit="s", utc=True)
    recent = (moment >= LAST_COMPLETE_WEEK_END - pd.Timedelta(days=28)) & (moment < LAST_COMPLETE_WEEK_END)
    kept_users = sorted(ratings.loc[recent, "userId"].unique())[:keep_users]
    ratings = ratings[~recent | ratings["userId"].isin(kept_users)]
    ratings.to_csv(directory / "ratings.csv", index=False)
    after = int((pd.to_datetime(ratings["timestamp"], unit="s", utc=True) >= LAST_COMPLETE_WEEK_END).sum())
    return directory, Expected(ratings_rows=len(ratings), good_ratings=len(ratings), held_back=after)
