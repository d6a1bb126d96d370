"""The ``Source`` protocol every data source implements, the results of its reads, and the plausible time range.

A source reads its own files and returns them in the canonical layout's types (``layout.py``): titles, users, events
and tags, each with the table of rows rejected at the door (``rejects.py``) and counts of what was kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa

from rec_assets.sources.rejects import CASCADE_REASONS, Reason


@dataclass
class TitlesRead:
    """``titles``: the columns of ``layout.TITLE_FIELDS``, typed as ``titles_frame`` says; ``counts``: what was
    kept, rejected and missing (``title_counts`` plus source-specific counts)."""

    titles: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class UsersRead:
    """``users``: user_id int64, then one object column per categorical feature (str or None)."""

    users: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def has_users_file(self) -> bool:
        return not self.counts.get("missing_users_file", 0)

    @property
    def known_user_ids(self) -> np.ndarray | None:
        """The ids to validate events against, or None when the source has no users file (then nothing is checked)."""
        return self.users["user_id"].to_numpy() if self.has_users_file else None


@dataclass
class EventsRead:
    """``events``: user_id int64, title_id int64, ts timestamp[us, UTC], in file order, only start <= ts < end.

    ``rejected`` holds the bad rows of the whole file (each once, with its first reason), wherever their timestamp
    falls. ``rows_read`` counts the data rows in the file (blank lines excluded).
    """

    events: pa.Table
    rejected: pd.DataFrame
    rows_read: int
    held_back: tuple["HeldBack", ...] = ()
    fallback_decoded_lines: int = 0

    def accounting(self) -> dict[str, int]:
        """Rows read = stored + quarantined + cascaded + held back: each term, by reason where there is one."""
        reasons = self.rejected["reason"].value_counts().to_dict() if len(self.rejected) else {}
        counts = {
            "rows_read": self.rows_read,
            "stored": self.events.num_rows,
            "quarantined": sum(n for r, n in reasons.items() if r not in CASCADE_REASONS),
            "cascaded": sum(n for r, n in reasons.items() if r in CASCADE_REASONS),
            "held_back": sum(h.rows for h in self.held_back),
        }
        counts.update({f"quarantined:{r}": int(n) for r, n in sorted(reasons.items()) if r not in CASCADE_REASONS})
        counts.update({f"cascaded:{r}": int(n) for r, n in sorted(reasons.items()) if r in CASCADE_REASONS})
        counts.update({f"held_back:{h.where}": h.rows for h in self.held_back})
        return counts


@dataclass(frozen=True)
class HeldBack:
    """Good event rows a read did not return because they fall outside its range (``before_range`` or
    ``after_range``, e.g. the data's last, incomplete week), with the first and last of their timestamps."""

    where: str
    rows: int
    first: datetime
    last: datetime

    def describe(self, label: str | None = None) -> str:
        return f"{self.rows} {label or self.where.replace('_', ' ')} ({self.first:%Y-%m-%d} .. {self.last:%Y-%m-%d})"


@dataclass
class TagsRead:
    """``tags``: title_id int64, tag str (stripped, lower-cased, never empty), ts datetime64[us, UTC]: one row per
    time a user applied a tag to a title, in file order. Sources without a tags file return an empty frame."""

    tags: pd.DataFrame
    rejected: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class Source(Protocol):
    name: str
    data_dir: Path

    def read_titles(self, mode: str = "quarantine", *, now: datetime | None = None) -> TitlesRead: ...

    def read_users(self, mode: str = "quarantine") -> UsersRead: ...

    def read_events(
        self,
        *,
        start: datetime | None,
        end: datetime | None,
        known_title_ids: Any,
        known_user_ids: Any,
        now: datetime,
        mode: str = "quarantine",
        earliest: datetime | None = None,
    ) -> EventsRead: ...

    def read_tags(self, mode: str = "quarantine", *, known_title_ids: Any, bounds: TimestampBounds) -> TagsRead: ...

    def event_span(self, bounds: TimestampBounds | None = None) -> tuple[date, date]: ...

    def fingerprint(self) -> str: ...


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; naive datetimes are taken to be UTC already (the layout is UTC throughout)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


DEFAULT_EARLIEST_EVENT = "1990-01-01"
DEFAULT_FUTURE_SLACK_DAYS = 1


@dataclass(frozen=True)
class TimestampBounds:
    """The plausible range of event and tag timestamps: ``earliest <= ts <= latest``. Outside it a row is
    quarantined (``implausible_timestamp`` / ``future``), and it never moves the span or the partitions."""

    earliest: datetime
    latest: datetime

    @classmethod
    def for_run(cls, now: datetime, earliest: str = DEFAULT_EARLIEST_EVENT,
                future_slack_days: int = DEFAULT_FUTURE_SLACK_DAYS) -> "TimestampBounds":
        """Not before ``earliest`` (an ISO day or moment, naive = UTC), not after the run's clock plus the slack."""
        try:
            low = as_utc(datetime.fromisoformat(earliest))
        except ValueError:
            raise ValueError(f"earliest event time {earliest!r} is not an ISO-8601 date (YYYY-MM-DD)") from None
        return cls(earliest=low, latest=as_utc(now) + timedelta(days=future_slack_days))

    def problem(self, moment: datetime) -> tuple[str, str] | None:
        moment = as_utc(moment)
        if moment < self.earliest:
            return Reason.IMPLAUSIBLE_TIMESTAMP, (
                f"timestamp {moment.isoformat()} is before the earliest plausible time {self.earliest:%Y-%m-%d} "
                "(REC_EARLIEST_EVENT)")
        if moment > self.latest:
            return Reason.FUTURE, f"timestamp {moment.isoformat()} is after now ({self.latest.isoformat()})"
        return None
