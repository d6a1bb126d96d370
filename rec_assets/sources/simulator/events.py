"""Watch events: week by week, each active user draws a few titles by taste, popularity and novelty.

For user u in week w the choice distribution over the titles available by then (acquired in week <= w) is
p(t) ~ exp(log_popularity[t] + novelty(w - acquisition_week[t]) + affinity(u, t)),
with novelty(a) = boost_t * exp(-a / novelty_decay_weeks) (boost_t: novelty_boost, drop_novelty_boost for a drop
title) and affinity(u, t) = sum(taste_u * weights * latent_t). An exact softmax over the catalogue for every user is
too slow for the large preset, so each user draws ``candidates_per_user`` candidates from the prior exp(log_popularity
+ novelty) (shared by the week's users) and picks among them by a Gumbel-top-k on affinity + log(multiplicity):
sampling-importance-resampling. Already watched titles are masked out (a user x title bitmap), so pairs never
repeat. Timestamps follow a weekday x hour profile (evenings, weekends), never before the acquisition day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rec_assets.sources.simulator.world import STREAM_EVENTS, World, affinity_weights, rng_for, season_factor

# Relative viewing by weekday (Monday first) and by hour of day (UTC, as a stand-in for local time).
_WEEKDAY = np.array([1.0, 0.95, 1.0, 1.05, 1.25, 1.45, 1.35])
_HOUR = np.array([0.5, 0.3, 0.2, 0.15, 0.12, 0.15, 0.25, 0.4, 0.5, 0.55, 0.6, 0.7,
                  0.8, 0.8, 0.8, 0.85, 0.95, 1.1, 1.4, 1.8, 2.1, 2.0, 1.5, 0.9])
_HOUR_WEIGHTS = (_WEEKDAY[:, None] * _HOUR[None, :]).ravel()
_HOUR_CDF = np.concatenate([[0.0], np.cumsum(_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())])
_HOUR_CDF[-1] = 1.0

# Upper bound on user x candidate entries handled at once (memory of one block, about 100 bytes per entry).
_BLOCK_ENTRIES = 1 << 20


@dataclass(frozen=True)
class Events:
    """Watch events as parallel arrays, sorted by (timestamp, user, title); indexes, not ids."""

    user: np.ndarray  # int32 user index
    title: np.ndarray  # int32 title index
    timestamp: np.ndarray  # int64 Unix seconds (UTC)

    def __len__(self) -> int:
        return len(self.user)


def novelty(config, age_weeks: np.ndarray, boost: np.ndarray | float | None = None) -> np.ndarray:
    """Novelty logit of titles ``age_weeks`` after acquisition; ``boost`` per title (default novelty_boost)."""
    boost = config.novelty_boost if boost is None else boost
    return boost * np.exp(-age_weeks / config.novelty_decay_weeks)


def simulate_events(world: World) -> Events:
    config = world.config
    titles, users = world.titles, world.users
    n_users, n_titles = config.n_users, config.n_titles
    acq_week = world.acquisition_week
    # Titles are numbered in acquisition order, so the titles available in week w are a prefix.
    available_by_week = np.searchsorted(acq_week, np.arange(config.n_weeks), side="right")
    scaled_taste = users.taste * affinity_weights(config)[None, :]
    latent = titles.latent
    watched = np.zeros((n_users, (n_titles + 7) // 8), dtype=np.uint8)
    season = season_factor(config)
    first_second = _unix_day(config.first_day)
    n_candidates = config.candidates_per_user
    block_users = max(1, _BLOCK_ENTRIES // n_candidates)

    chunks_user, chunks_title, chunks_ts = [], [], []
    for week in range(config.n_weeks):
        rng = rng_for(config.seed, STREAM_EVENTS, week)
        n_avail = int(available_by_week[week])
        active = np.flatnonzero((users.join_week <= week) & (week < users.end_week))
        if n_avail == 0 or len(active) == 0:
            continue
        # Over-dispersed weekly counts: a user's appetite varies from week to week (gamma-Poisson).
        appetite = users.weekly_rate[active] * season[week] * rng.gamma(2.0, 0.5, len(active))
        counts = np.minimum(rng.poisson(appetite), config.max_watches_per_week)
        keep = counts > 0
        active, counts = active[keep], counts[keep]
        prior = titles.log_popularity[:n_avail] + novelty(config, week - acq_week[:n_avail],
                                                        titles.novelty_boost[:n_avail])
        alias = AliasTable(np.exp(prior - prior.max(), dtype=np.float64))

        week_users, week_titles = [], []
        for start in range(0, len(active), block_users):
            block = active[start:start + block_users]
            block_counts = counts[start:start + block_users]
            chosen_user, chosen_title = _choose(rng, block, block_counts, alias, scaled_taste, latent, watched,
                                                n_candidates)
            week_users.append(chosen_user)
            week_titles.append(chosen_title)
        user_idx = np.concatenate(week_users)
        title_idx = np.concatenate(week_titles)
        np.bitwise_or.at(watched, (user_idx, title_idx >> 3), (1 << (title_idx & 7)).astype(np.uint8))

        # Seconds into the week, not before the title's acquisition day.
        earliest_day = np.where(acq_week[title_idx] == week, titles.acquisition_day[title_idx] - 7 * week, 0)
        lo = _HOUR_CDF[earliest_day * 24]
        hour = np.searchsorted(_HOUR_CDF, lo + rng.random(len(title_idx)) * (1.0 - lo), side="right") - 1
        hour = np.clip(hour, earliest_day * 24, 7 * 24 - 1)
        seconds = hour * 3600 + rng.integers(0, 3600, len(title_idx))
        ts = first_second + week * 7 * 86400 + seconds
        order = np.lexsort((title_idx, user_idx, ts))
        chunks_user.append(user_idx[order].astype(np.int32))
        chunks_title.append(title_idx[order].astype(np.int32))
        chunks_ts.append(ts[order].astype(np.int64))

    if not chunks_user:
        empty = np.zeros(0, dtype=np.int32)
        return Events(empty, empty, np.zeros(0, dtype=np.int64))
    return Events(np.concatenate(chunks_user), np.concatenate(chunks_title), np.concatenate(chunks_ts))


class AliasTable:
    """Walker's alias method: O(1) exact draws from a discrete distribution (much faster than inverse-CDF search)."""

    def __init__(self, weights: np.ndarray) -> None:
        n = len(weights)
        scaled = (weights * (n / weights.sum())).tolist()
        prob = [1.0] * n
        alias = list(range(n))
        small = [i for i, p in enumerate(scaled) if p < 1.0]
        large = [i for i, p in enumerate(scaled) if p >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            prob[s], alias[s] = scaled[s], g
            scaled[g] += scaled[s] - 1.0
            (small if scaled[g] < 1.0 else large).append(g)
        self.n = n
        self.prob = np.array(prob)
        self.alias = np.array(alias, dtype=np.int32)

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        u = rng.random(shape) * self.n
        slot = u.astype(np.int32)
        np.minimum(slot, self.n - 1, out=slot)
        # The fractional part of u is a second uniform, independent of the slot.
        return np.where(u - slot < self.prob[slot], slot, self.alias[slot])


def _choose(rng, block, block_counts, alias, scaled_taste, latent, watched, n_candidates):
    """Gumbel-top-k over prior-drawn candidates, per user of the block; returns (user indexes, title indexes)."""
    n_rows = len(block)
    candidates = alias.draw(rng, (n_rows, n_candidates))
    candidates.sort(axis=1)
    # One logit per distinct candidate; its multiplicity keeps the prior's weight (importance resampling).
    first = np.ones((n_rows, n_candidates), dtype=bool)
    first[:, 1:] = candidates[:, 1:] != candidates[:, :-1]
    flat_first = np.flatnonzero(first)
    multiplicity = np.diff(np.append(flat_first, n_rows * n_candidates))
    distinct_title = candidates.ravel()[flat_first]
    distinct_user = block[flat_first // n_candidates]
    affinity = np.einsum("ij,ij->i", scaled_taste[distinct_user], latent[distinct_title])
    seen = (watched[distinct_user, distinct_title >> 3] >> (distinct_title & 7).astype(np.uint8)) & 1
    logit = np.full(n_rows * n_candidates, -np.inf, dtype=np.float32)
    logit[flat_first] = np.where(seen == 1, -np.inf, affinity + np.log(multiplicity))
    # Gumbel noise as -log(Exponential): the same distribution as rng.gumbel, several times faster.
    exponential = np.maximum(rng.standard_exponential((n_rows, n_candidates), dtype=np.float32),
                             np.float32(1e-30))
    logit = logit.reshape(n_rows, n_candidates) - np.log(exponential)

    k = int(block_counts.max())
    if k < n_candidates:
        top = np.argpartition(-logit, k - 1, axis=1)[:, :k]
    else:
        top = np.tile(np.arange(n_candidates), (n_rows, 1))
    top_logit = np.take_along_axis(logit, top, axis=1)
    rank = np.argsort(-top_logit, axis=1, kind="stable")
    top = np.take_along_axis(top, rank, axis=1)
    top_logit = np.take_along_axis(top_logit, rank, axis=1)
    # Each user keeps their first `count` picks; -inf ones (already watched, or padding) are dropped.
    take = (np.arange(top.shape[1])[None, :] < block_counts[:, None]) & np.isfinite(top_logit)
    return block[np.nonzero(take)[0]], np.take_along_axis(candidates, top, axis=1)[take]


def _unix_day(day) -> int:
    return int((np.datetime64(day.isoformat(), "D") - np.datetime64("1970-01-01", "D")).astype(np.int64)) * 86400
