"""Configuration of the catalog simulator: the knobs, the named presets and the event span.

Kept apart from ``generator.py`` so that the generator's helper modules can import the config type without a cycle;
the package ``rec_assets.sources.simulator`` re-exports what callers need.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import ClassVar

# Bump when a change to the generator changes its output for an unchanged config: it is part of the config hash, so
# cached directories written by an older generator are regenerated rather than silently reused.
GENERATOR_VERSION = 3


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that determines a simulated dataset; equal configs give byte-identical directories."""

    preset: str = "custom"
    seed: int = 0
    n_users: int = 6_000
    n_titles: int = 3_000
    # Pool of actors and directors to cast from; Zipf-like fame means many of them are rarely or never cast.
    n_people: int = 5_000
    # First event day (a Monday) and the number of whole weeks of events from it.
    first_day: date = date(2024, 9, 2)
    n_weeks: int = 114
    # Expected number of watch events over the span (the realised count is within a few percent).
    target_events: int = 400_000
    # Share of titles available from the first day; the rest arrive week by week.
    initial_library_share: float = 0.25
    # Weekly arrivals grow as exp(arrival_growth * t), t going from 0 (first week) to 1 (last week).
    arrival_growth: float = 2.2
    # A release drop: this many of the n_titles arrive at once on the Monday of week drop_week (negative: counted
    # from the end, -1 the last week), as a library deal lands on a service; mostly older releases, promoted less
    # than a premiere (drop_novelty_boost instead of novelty_boost). 0: no drop.
    drop_titles: int = 0
    drop_week: int = -1
    drop_novelty_boost: float = 1.0
    tv_share: float = 0.2
    # Share of users already subscribed on the first day; the others join through the span, more of them later.
    initial_user_share: float = 0.55
    # Share of users who stop watching at some point (churn).
    churn_share: float = 0.2
    image_width: int = 160
    image_height: int = 240
    jpeg_quality: int = 85
    missing_synopsis_share: float = 0.025
    missing_image_share: float = 0.025
    # Scale of the user-title affinity in the choice logit: higher means tastes matter more than popularity.
    taste_strength: float = 2.2
    # Spread (standard deviation) of the titles' log base popularity.
    popularity_sigma: float = 1.0
    # Logit boost of a title in its acquisition week, decaying with exp(-age_weeks / novelty_decay_weeks).
    novelty_boost: float = 3.0
    novelty_decay_weeks: float = 2.0
    # Candidates drawn (from the popularity-and-novelty prior) per user and week, among which the user's tastes
    # choose; more candidates make the choice closer to an exact softmax over the whole catalogue, and slower.
    candidates_per_user: int = 192
    max_watches_per_week: int = 30

    # What __post_init__ checks, in this order: the knobs that count something (at least 1), the shares (in [0, 1]).
    _COUNTS: ClassVar[tuple[str, ...]] = (
        "n_users", "n_titles", "n_people", "n_weeks", "target_events", "candidates_per_user", "max_watches_per_week",
        "image_width", "image_height",
    )
    _SHARES: ClassVar[tuple[str, ...]] = (
        "initial_library_share", "tv_share", "initial_user_share", "churn_share", "missing_synopsis_share",
        "missing_image_share",
    )

    def __post_init__(self) -> None:
        problems = []
        if self.first_day.weekday() != 0:
            problems.append(f"first_day must be a Monday, got {self.first_day} ({self.first_day:%A})")
        for name in self._COUNTS:
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in self._SHARES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 1 <= self.jpeg_quality <= 95:
            problems.append(f"jpeg_quality must lie in [1, 95], got {self.jpeg_quality}")
        if not 0 <= self.drop_titles <= self.n_titles:
            problems.append(f"drop_titles must lie in [0, n_titles], got {self.drop_titles}")
        if not -self.n_weeks <= self.drop_week < self.n_weeks:
            problems.append(f"drop_week must lie in [-n_weeks, n_weeks), got {self.drop_week}")
        if self.n_people < 50:
            problems.append(f"n_people must be at least 50 to cast titles, got {self.n_people}")
        if problems:
            raise ValueError("invalid SimulatorConfig: " + "; ".join(problems))

    @property
    def drop_week_index(self) -> int:
        """The drop's week as an index from first_day (0 .. n_weeks - 1)."""
        return self.drop_week % self.n_weeks

    def to_json_dict(self) -> dict:
        """The config as JSON-ready values (dates as ISO strings), in field order."""
        values = dataclasses.asdict(self)
        values["first_day"] = self.first_day.isoformat()
        return values

    def config_hash(self) -> str:
        """A stable digest of the config and the generator version (independent of process and hash seed)."""
        payload = json.dumps({"generator_version": GENERATOR_VERSION, "config": self.to_json_dict()},
                             sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


PRESETS: dict[str, SimulatorConfig] = {
    # Unit tests: about two seconds to generate.
    "tiny": SimulatorConfig(preset="tiny", n_users=300, n_titles=400, n_people=5_000, target_events=36_000,
                            candidates_per_user=128),
    # `make run`: the whole graph on a laptop. A drop of 320 titles in the last week (the one `make run` scores)
    # gives it a cold-start set near the paper's (360 movies, 75 series): 232 movies and 61 series with seed 0.
    "default": SimulatorConfig(preset="default", n_titles=3_320, drop_titles=320),
    # Benchmarks: a few minutes, peak memory under ~4 GB.
    "large": SimulatorConfig(preset="large", n_users=100_000, n_titles=20_000, n_people=20_000,
                             target_events=10_200_000, candidates_per_user=128),
}


def config_for(preset: str, seed: int = 0) -> SimulatorConfig:
    """The named preset with the given seed."""
    try:
        base = PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown simulator preset {preset!r}; known presets: {', '.join(sorted(PRESETS))}") \
            from None
    return dataclasses.replace(base, seed=seed)


def simulator_span(config: SimulatorConfig) -> tuple[date, date]:
    """First event day and the day after the last one (half-open, whole Monday-start weeks), without generating."""
    return config.first_day, config.first_day + timedelta(weeks=config.n_weeks)
