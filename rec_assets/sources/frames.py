"""The typed frames every source returns (titles, users, tags) and the counts that go with them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from rec_assets.sources.layout import LIST_FIELDS, TITLE_FIELDS
from rec_assets.sources.protocol import TagsRead, UsersRead, as_utc
from rec_assets.sources.rejects import Reason, RejectLog, rejected_frame

EARLIEST_RELEASE_YEAR = 1880
# Announced titles can carry next year's (or the year after's) release date; anything later is a data error.
RELEASE_YEAR_SLACK = 2


def titles_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Typed titles: title_id int64; list fields object (lists of str); release_year Int64;
    acquisition_date datetime64[us] (a day, NaT when unknown); other text fields object (str or None)."""
    columns: dict[str, pd.Series] = {}
    for name in TITLE_FIELDS:
        values = [record.get(name) for record in records]
        if name == "title_id":
            columns[name] = pd.Series(values, dtype="int64")
        elif name == "release_year":
            columns[name] = pd.Series(values, dtype="Int64")
        elif name == "acquisition_date":
            days = np.array([v if v is not None else "NaT" for v in values], dtype="datetime64[D]")
            columns[name] = pd.Series(days.astype("datetime64[us]"))
        elif name in LIST_FIELDS:
            columns[name] = pd.Series([list(v or []) for v in values], dtype="object")
        else:
            columns[name] = pd.Series(values, dtype="object")
    return pd.DataFrame(columns)


def plausible_years(now: datetime | None) -> tuple[int, int]:
    year = as_utc(now or datetime.now(timezone.utc)).year
    return EARLIEST_RELEASE_YEAR, year + RELEASE_YEAR_SLACK


def title_problem(record: dict[str, Any], now: datetime | None) -> tuple[str, str] | None:
    """The checks every source's titles pass after mapping: a known category and a plausible release year."""
    category = record.get("category")
    if category not in ("movie", "tv"):
        return Reason.BAD_CATEGORY, f"category {category!r} is not movie or tv"
    year = record.get("release_year")
    low, high = plausible_years(now)
    if year is not None and not low <= year <= high:
        return Reason.IMPLAUSIBLE_YEAR, f"release_year {year} is outside {low}..{high}"
    return None


def title_counts(titles: pd.DataFrame, rejected: pd.DataFrame) -> dict[str, int]:
    """What every TitlesRead counts: kept and rejected titles, per category, and each missing field."""
    counts = {"titles": len(titles), "rejected": len(rejected)}
    for category in ("movie", "tv"):
        counts[f"category_{category}"] = int((titles["category"] == category).sum())
    for name in ("title", "maturity_rating", "country", "release_year", "acquisition_date", "synopsis", "image"):
        counts[f"missing_{name}"] = int(titles[name].isna().sum())
    for name in sorted(LIST_FIELDS):
        counts[f"missing_{name}"] = int((titles[name].map(len) == 0).sum())
    return counts


def user_counts(users: pd.DataFrame, rejected: pd.DataFrame, *, missing_file: bool) -> dict[str, int]:
    counts = {"users": len(users), "rejected": len(rejected), "missing_users_file": int(missing_file)}
    for name in users.columns[1:]:
        counts[f"missing_{name}"] = int(users[name].isna().sum())
    return counts


def users_frame(ids: Sequence[int], features: dict[str, Sequence[str | None]]) -> pd.DataFrame:
    columns = {"user_id": pd.Series(list(ids), dtype="int64")}
    for name, values in features.items():
        columns[name] = pd.Series(list(values), dtype="object")
    return pd.DataFrame(columns)


def users_read(ids: Sequence[int], features: dict[str, Sequence[str | None]], log: RejectLog, *,
               missing_file: bool = False) -> UsersRead:
    """The users read, ``log``'s rejected rows (raising the first in fail mode) and the counts that go with them."""
    users = users_frame(ids, features)
    rejected = log.finish()
    counts = user_counts(users, rejected, missing_file=missing_file)
    counts.update(log.encoding_counts())
    return UsersRead(users=users, rejected=rejected, counts=counts)


def tags_frame(title_ids: Sequence[int], tags: Sequence[str], ts: Sequence[datetime]) -> pd.DataFrame:
    return pd.DataFrame({
        "title_id": pd.Series(list(title_ids), dtype="int64"),
        "tag": pd.Series(list(tags), dtype="str"),
        "ts": pd.Series(pd.to_datetime(list(ts), utc=True), dtype="datetime64[us, UTC]"),
    })


def no_tags(missing_file: bool = True) -> TagsRead:
    return TagsRead(tags=tags_frame([], [], []), rejected=rejected_frame(),
                    counts={"tags": 0, "rejected": 0, "missing_tags_file": int(missing_file)})
