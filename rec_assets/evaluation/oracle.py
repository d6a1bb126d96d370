"""Oracle rows of Table 2 on the simulator: the week's cold-start titles ranked by the world's true preferences.

A ceiling, never a model. ``oracle_metadata`` ranks by the true affinity restricted to the hidden factors metadata
carries (categorical, synopsis and cover-art parts); ``oracle_all`` by the simulator's whole choice logit: all four
parts (the idiosyncratic one too) plus the title's log popularity and its novelty in the scoring week, so it is what
an ideal recommender knowing the world would rank by. ``oracle_linear_read`` keeps the true user taste but reads each
title's metadata factors from the features the towers get, by a ridge regression fitted on the week's other titles:
how much of ``oracle_metadata`` the features let a linear read recover (a reference, not a bound on a deeper tower).
The factors come from the simulator's ``oracle_factors.npz``;
this module is its only reader. Lists go through the models' ``top_k_from_scores`` (exclusion, ties, padding) and
``evaluate_segments``, on the same users and truth as ``evaluate_week``.

Pure code: no dagster import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.linear_model import RidgeCV
from sklearn.preprocessing import StandardScaler

from rec_assets.model.data import ItemFeatures
from rec_assets.model.inputs import WeekData
from rec_assets.evaluation.metrics import candidate_masks, evaluate_segments
from rec_assets.evaluation.scoring import CSR, top_k_from_scores
from rec_assets.evaluation.week import history_exclusion, new_watch_truth, remap_truth, subset_users
from rec_assets.sources.simulator import ORACLE_FILE

__all__ = ["LINEAR_READ_SYSTEM", "METADATA_PARTS", "ORACLE_SYSTEMS", "OracleFactors", "evaluate_oracles",
           "linear_read_latent", "load_oracle_factors", "oracle_scores", "oracle_top_k", "ridge_read",
           "title_feature_matrix"]

METADATA_PARTS: tuple[str, ...] = ("categorical", "synopsis", "cover_art")
# System name -> (latent parts in the affinity, whether the popularity and novelty terms of the choice logit count).
ORACLE_SYSTEMS: dict[str, tuple[tuple[str, ...], bool]] = {
    "oracle_metadata": (METADATA_PARTS, False),
    "oracle_all": ((*METADATA_PARTS, "idiosyncratic"), True),
}
# True taste, metadata factors as the features predict them (``linear_read_latent``); no prior.
LINEAR_READ_SYSTEM = "oracle_linear_read"
RIDGE_ALPHAS = np.logspace(-2, 4, 13)


@dataclass(frozen=True)
class OracleFactors:
    """The simulator's hidden factors, by id: choice logit = affinity + log popularity + novelty."""

    user_ids: np.ndarray  # int64 [n_users], ascending
    title_ids: np.ndarray  # int64 [n_titles], ascending
    user_taste: np.ndarray  # [n_users, d]
    title_latent: np.ndarray  # [n_titles, d]
    affinity_weights: np.ndarray  # [d]: affinity = sum(taste * weights * latent)
    parts: dict[str, tuple[int, int]]  # part name -> [start, stop) dims
    title_log_popularity: np.ndarray  # [n_titles]
    title_novelty_boost: np.ndarray  # [n_titles]
    title_acquisition_day: np.ndarray  # [n_titles] days after first_day
    first_day: date
    novelty_decay_weeks: float

    def prior(self, title_rows: np.ndarray, scoring_week: date) -> np.ndarray:
        """Log popularity plus novelty of the titles in the scoring week (the choice logit's user-free part)."""
        age_weeks = (scoring_week - self.first_day).days // 7 - self.title_acquisition_day[title_rows] // 7
        novelty = self.title_novelty_boost[title_rows] * np.exp(-age_weeks / self.novelty_decay_weeks)
        return self.title_log_popularity[title_rows].astype(np.float64) + novelty


def load_oracle_factors(source_dir: Path | str) -> OracleFactors | None:
    """The factors of the simulated source in ``source_dir``; None when it has no oracle file (any other source)."""
    path = Path(source_dir) / ORACLE_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        return OracleFactors(
            user_ids=stored["user_id"].astype(np.int64),
            title_ids=stored["title_id"].astype(np.int64),
            user_taste=stored["user_taste"],
            title_latent=stored["title_latent"],
            affinity_weights=stored["affinity_weights"],
            parts={str(n): (int(lo), int(hi)) for n, (lo, hi) in zip(stored["part_names"], stored["part_bounds"])},
            title_log_popularity=stored["title_log_popularity"],
            title_novelty_boost=stored["title_novelty_boost"],
            title_acquisition_day=stored["title_acquisition_day"].astype(np.int64),
            first_day=date.fromisoformat(str(stored["first_day"])),
            novelty_decay_weeks=float(stored["novelty_decay_weeks"]),
        )


def _rows(known: np.ndarray, wanted: np.ndarray, what: str) -> np.ndarray:
    wanted = np.asarray(wanted, dtype=np.int64)
    rows = np.minimum(np.searchsorted(known, wanted), len(known) - 1)
    if len(wanted) and (len(known) == 0 or np.any(known[rows] != wanted)):
        raise ValueError(f"the oracle file lacks some {what} ids (another source or a stale simulation?)")
    return rows


def oracle_scores(factors: OracleFactors, system: str, user_ids: np.ndarray, title_ids: np.ndarray,
                  scoring_week: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user vectors [n_users, d], title vectors [n_titles, d], title offsets [n_titles]) in float64: the score of
    (u, t) is ``users[u] @ titles[t] + offsets[t]``."""
    parts, with_prior = ORACLE_SYSTEMS[system]
    user_rows = _rows(factors.user_ids, user_ids, "user")
    title_rows = _rows(factors.title_ids, title_ids, "title")
    keep = np.zeros(len(factors.affinity_weights))
    for part in parts:
        keep[slice(*factors.parts[part])] = 1.0
    users = factors.user_taste[user_rows].astype(np.float64) * (factors.affinity_weights * keep)
    titles = factors.title_latent[title_rows].astype(np.float64)
    offsets = factors.prior(title_rows, scoring_week) if with_prior else np.zeros(len(title_rows))
    return users, titles, offsets


def title_feature_matrix(items: ItemFeatures, fit: np.ndarray) -> np.ndarray:
    """The towers' features of each title as one dense matrix: categorical fields without the popularity bins
    (which only interactions set), synopsis and cover-art vectors standardised on the ``fit`` rows."""
    categorical = sp.csr_matrix((np.ones(len(items.categorical_indices)), items.categorical_indices,
                                 items.categorical_offsets), shape=(items.n_titles, items.categorical_width))
    metadata_only = np.setdiff1d(np.arange(items.categorical_width),
                                 np.concatenate([items.interaction_columns, items.no_views_columns]))
    dense = np.hstack([np.where(items.synopsis_missing[:, None], 0.0, items.synopsis),
                       np.where(items.cover_art_missing[:, None], 0.0, items.cover_art)]).astype(np.float64)
    dense = np.nan_to_num(StandardScaler().fit(dense[fit]).transform(dense))
    return np.hstack([categorical[:, metadata_only].toarray(), dense])


def ridge_read(features: np.ndarray, targets: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Every row's ``targets`` as a ridge regression on ``features`` fitted on the ``fit`` rows predicts them, the
    penalty chosen per target by leave-one-out error over ``RIDGE_ALPHAS``."""
    return RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True).fit(features[fit], targets[fit]).predict(features)


def linear_read_latent(factors: OracleFactors, items: ItemFeatures, fit: np.ndarray) -> np.ndarray:
    """Title factors [n_titles, d] (rows of ``items``) whose metadata parts are ``ridge_read`` of the titles'
    ``title_feature_matrix``, fitted on the true factors of the ``fit`` rows (bool [n_titles]: the week's titles
    that are not cold-start); other dims zero."""
    rows = _rows(factors.title_ids, items.title_ids, "title")
    dims = np.concatenate([np.arange(*factors.parts[part]) for part in METADATA_PARTS])
    latent = np.zeros((items.n_titles, factors.title_latent.shape[1]))
    latent[:, dims] = ridge_read(title_feature_matrix(items, fit), factors.title_latent[rows][:, dims], fit)
    return latent


def oracle_top_k(
    factors: OracleFactors,
    user_ids: np.ndarray,
    title_ids: np.ndarray,
    masks: Mapping[tuple[str, str], np.ndarray],
    k: int,
    *,
    scoring_week: date,
    exclude: CSR | None = None,
    chunk_users: int = 4096,
    read_latent: np.ndarray | None = None,
) -> dict[str, dict[tuple[str, str], np.ndarray]]:
    """Top-``k`` title rows (of ``title_ids``) per user row and segment for every oracle system:
    ``{system: {segment: int64 [n_users, k]}}``, -1 padded; ``masks`` are the segments' candidates (e.g. cold movies
    and cold TV apart), ``exclude`` the titles each user already watched. With ``read_latent``
    (``linear_read_latent``'s rows, in ``title_ids`` order) also ``LINEAR_READ_SYSTEM``."""
    out: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    systems = [*ORACLE_SYSTEMS, *([LINEAR_READ_SYSTEM] if read_latent is not None else [])]
    for system in systems:
        if system == LINEAR_READ_SYSTEM:
            users, _, _ = oracle_scores(factors, "oracle_metadata", user_ids, title_ids, scoring_week)
            users, titles, offsets = (torch.from_numpy(a) for a in (users, read_latent, np.zeros(len(title_ids))))
        else:
            users, titles, offsets = (torch.from_numpy(a) for a in oracle_scores(factors, system, user_ids,
                                                                                 title_ids, scoring_week))

        def score_chunk(start: int, stop: int, candidates: torch.Tensor) -> torch.Tensor:
            return users[start:stop] @ titles[candidates].T + offsets[candidates]

        out[system] = {
            segment: top_k_from_scores(score_chunk, len(users), len(titles), k, exclude, mask, chunk_users,
                                       score_dtype=torch.float64)[0].numpy()
            for segment, mask in masks.items()
        }
    return out


def evaluate_oracles(data: WeekData, factors: OracleFactors, k: int, scoring_week: date,
                     chunk_users: int = 4096) -> pd.DataFrame:
    """Metrics of the oracle systems on the week's cold-start segments, in ``evaluate_week``'s long frame (variant,
    candidate_set, category, metric, value, evaluated_users), on its users and truth."""
    catalogue = data.catalogue
    masks = candidate_masks(catalogue["is_warm"].to_numpy(bool), catalogue["is_cold_start"].to_numpy(bool),
                            data.items.is_tv)
    cold = {segment: mask for segment, mask in masks.items() if segment[0] == "cold"}
    exclusion_all = history_exclusion(data.users)
    truth_all = new_watch_truth(data, exclusion_all)
    rows = np.unique(truth_all[0])  # only users with a new Y' watch can be evaluated, as in evaluate_week
    users = subset_users(data.users, rows)
    truth = remap_truth(truth_all, rows)
    read = linear_read_latent(factors, data.items, ~catalogue["is_cold_start"].to_numpy(bool))
    lists = oracle_top_k(factors, users.user_ids, data.items.title_ids, cold, k, scoring_week=scoring_week,
                         exclude=history_exclusion(users), chunk_users=chunk_users, read_latent=read)
    frames = [evaluate_segments(segments, truth, cold, k).assign(variant=system) for system, segments in lists.items()]
    return pd.concat(frames, ignore_index=True)[
        ["variant", "candidate_set", "category", "metric", "value", "evaluated_users"]
    ]
