"""The four half-open time windows of a scoring week W (docs/design.md, "Windows"; the paper's Figure 3).

    X  = [W - label - history, W - label)   training history (user-tower input when training)
    Y  = [W - label, W)                     training labels (positives)
    X' = [W - history, W)                   scoring history (user-tower input when scoring)
    Y' = [W, W + week)                      scoring labels (ground truth), the partition's own window

Y' starts where X, Y and X' end, so no event of Y' can reach training. The scoring week's bounds
come from the partition's time window; only the configured lengths are added here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True)
class WindowLengths:
    history_days: int = 730
    label_days: int = 14
    recent_popularity_days: int = 60

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"window length {name} must be positive, got {value}")


@dataclass(frozen=True)
class WeekWindows:
    scoring_week: datetime
    x_start: datetime
    x_end: datetime
    y_start: datetime
    y_end: datetime
    xp_start: datetime
    xp_end: datetime
    yp_start: datetime
    yp_end: datetime
    recent_popularity_days: int
    history_days: int

    def as_sql_parameters(self) -> dict[str, object]:
        """Bound parameters of the split's SQL models (naive UTC timestamps, as stored)."""
        values: dict[str, object] = {
            name: _naive_utc(value) for name, value in asdict(self).items() if isinstance(value, datetime)
        }
        values["scoring_week"] = self.scoring_week.date()
        values["recent_popularity_days"] = self.recent_popularity_days
        values["history_days"] = self.history_days
        return values

    def named(self) -> dict[str, tuple[datetime, datetime]]:
        return {
            "X": (self.x_start, self.x_end),
            "Y": (self.y_start, self.y_end),
            "X_prime": (self.xp_start, self.xp_end),
            "Y_prime": (self.yp_start, self.yp_end),
        }


def week_windows(week_start: datetime, week_end: datetime, lengths: WindowLengths) -> WeekWindows:
    """Windows of the scoring week whose own span (Y') is [week_start, week_end)."""
    if week_end <= week_start:
        raise ValueError(f"scoring week ends ({week_end}) before it starts ({week_start})")
    label = timedelta(days=lengths.label_days)
    history = timedelta(days=lengths.history_days)
    return WeekWindows(
        scoring_week=week_start,
        x_start=week_start - label - history,
        x_end=week_start - label,
        y_start=week_start - label,
        y_end=week_start,
        xp_start=week_start - history,
        xp_end=week_start,
        yp_start=week_start,
        yp_end=week_end,
        recent_popularity_days=lengths.recent_popularity_days,
        history_days=lengths.history_days,
    )


def _naive_utc(value: datetime) -> datetime:
    """Events are stored as naive UTC timestamps; bounds are bound the same way."""
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


MIN_LABELLED_USERS_SETTING = "REC_MIN_LABELLED_USERS"


@dataclass(frozen=True)
class WeekEvaluability:
    """Whether a week has the users to train on (a label in Y) and to evaluate on (an event in Y')."""

    windows: WeekWindows
    label_users: int
    scoring_users: int
    minimum: int

    @property
    def ok(self) -> bool:
        return self.label_users >= self.minimum and self.scoring_users >= self.minimum

    @property
    def week(self) -> str:
        return f"{self.windows.scoring_week:%Y-%m-%d}"

    def describe(self) -> str:
        """One line naming the week, its label windows, the counts and the setting that decides."""
        (y_start, y_end), (yp_start, yp_end) = self.windows.named()["Y"], self.windows.named()["Y_prime"]
        verdict = "can be trained and evaluated" if self.ok else "cannot be trained and evaluated"
        return (
            f"scoring week {self.week} {verdict}: {self.label_users} users have a label in Y "
            f"[{y_start:%Y-%m-%d}, {y_end:%Y-%m-%d}) and {self.scoring_users} in Y' [{yp_start:%Y-%m-%d}, "
            f"{yp_end:%Y-%m-%d}); at least {self.minimum} are needed in each ({MIN_LABELLED_USERS_SETTING})"
        )
