"""The item-holdout protocol of the LightFM paper (Kula 2015, section 4.2), on one scoring week's windows.

* **Split.** ``share`` (20%) of the titles that have any interaction in the week's history windows (X, Y or X'), drawn
  with a fixed seed separately for movies and TV (so both categories keep held-out titles), are held out entirely.
  The week's cold-start titles are not candidates for the split (they are the regular protocol's business).
* **Training.** Every system trains on the training phase (X, Y) with every interaction on a held-out title removed:
  no history event, no label, no column of the ALS/BPR/LightFM matrix, no ID embedding / identity feature
  (``id_known`` false). Their interaction-derived features are reset as for a title never watched: the popularity
  bins of the categorical vector are cleared and the ``no_views`` bit set (``PopularityColumns``), in both the
  training and the scoring features. Metadata (genres, cast, synopsis, ...) stay: that is what the protocol measures.
* **Scoring.** Users' X' histories lose their held-out titles as model input. Each user ranks the held-out titles
  of each category (segments ``("holdout", "movie")`` and ``("holdout", "tv")``), titles already watched in X' being
  excluded as in the regular protocol. The truth is the Y' watches of held-out titles not already watched in X';
  users with one are evaluated, through ``evaluation.metrics.evaluate_segments`` like every other table.

Systems that only score titles seen in training (ALS, BPR, popularity) are *not applicable* here (NaN rows).

Pure code: no dagster import.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from rec_assets.datasets import WeekData
from rec_assets.model.data import Interactions, ItemFeatures, UserData
from rec_assets.peers.adapters import EvaluationContext, TrainingSet, evaluation_context, training_set

__all__ = ["HoldoutSplit", "PopularityColumns", "holdout_split", "holdout_titles", "popularity_columns"]

HOLDOUT = "holdout"


@dataclass(frozen=True)
class PopularityColumns:
    """Categorical columns that encode interactions: popularity bins, and the ``no_views`` column of each field."""

    bins: tuple[int, ...]
    no_views: tuple[int, ...]


def popularity_columns(vocabulary: pd.DataFrame) -> PopularityColumns:
    """From the categorical artifact's ``vocabulary`` frame (field, value, column): every ``popularity_*`` column."""
    popular = vocabulary[vocabulary["field"].astype(str).str.startswith("popularity")]
    no_views = popular["value"].astype(str) == "no_views"
    return PopularityColumns(tuple(int(c) for c in popular.loc[~no_views, "column"]),
                             tuple(int(c) for c in popular.loc[no_views, "column"]))


@dataclass
class HoldoutSplit:
    held_out: np.ndarray  # bool [n_titles]
    training: TrainingSet  # training phase without any held-out interaction
    score: WeekData  # the scoring phase for exclusion and truth (unchanged histories and labels)
    score_items: ItemFeatures  # model input at scoring: held-out titles without ID / popularity
    score_users: UserData  # model input at scoring: X' histories without held-out titles
    context: EvaluationContext  # segments ("holdout", movie|tv)
    share: float
    seed: int

    def summary(self) -> dict:
        is_tv = self.score.items.is_tv
        return {"share": self.share, "seed": self.seed, "held_out_titles": int(self.held_out.sum()),
                "held_out_movies": int((self.held_out & ~is_tv).sum()),
                "held_out_tv": int((self.held_out & is_tv).sum()),
                "evaluated_users": int(len(np.unique(self.context.truth[0][self.held_out[self.context.truth[1]]])))}


def holdout_titles(catalogue: pd.DataFrame, is_tv: np.ndarray, share: float = 0.2, seed: int = 0) -> np.ndarray:
    """bool [n_titles]: ``round(share * n)`` of the week's warm titles per category, drawn with ``seed``."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    eligible = catalogue["is_warm"].to_numpy(bool) | catalogue["id_known"].to_numpy(bool)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(catalogue), dtype=bool)
    for in_category in (~np.asarray(is_tv, bool), np.asarray(is_tv, bool)):
        rows = np.flatnonzero(eligible & in_category)
        n = int(round(share * len(rows)))
        if n:
            held[rng.choice(rows, size=n, replace=False)] = True
    return held


def _without_titles(users: UserData, held: np.ndarray) -> UserData:
    keep = ~held[users.history_items]
    kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    counts = kept_before[users.history_offsets[1:]] - kept_before[users.history_offsets[:-1]]
    offsets = np.zeros(users.n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return replace(users, history_offsets=offsets, history_items=users.history_items[keep])


def _hide_items(items: ItemFeatures, held: np.ndarray, popularity: PopularityColumns | None) -> ItemFeatures:
    """Held-out titles: id_known false and, with ``popularity``, the categorical row of a title never watched."""
    items = replace(items, id_known=items.id_known & ~held)
    if popularity is None or not held.any():
        return items
    offsets, indices = items.categorical_offsets, items.categorical_indices
    row_of = np.repeat(np.arange(items.n_titles), np.diff(offsets))
    drop = held[row_of] & np.isin(indices, np.asarray(popularity.bins + popularity.no_views, dtype=np.int64))
    rows, cols = row_of[~drop], indices[~drop]
    held_rows = np.flatnonzero(held)
    rows = np.concatenate([rows, np.repeat(held_rows, len(popularity.no_views))])
    cols = np.concatenate([cols, np.tile(np.asarray(popularity.no_views, dtype=np.int64), len(held_rows))])
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    new_offsets = np.zeros(items.n_titles + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=items.n_titles), out=new_offsets[1:])
    return replace(items, categorical_offsets=new_offsets, categorical_indices=cols.astype(np.int64))


def holdout_split(train: WeekData, score: WeekData, popularity: PopularityColumns | None, share: float = 0.2,
                  seed: int = 0) -> HoldoutSplit:
    """The item-holdout protocol's training set and scoring inputs for one week (see the module docstring).

    ``popularity``: the categorical columns to reset for held-out titles (:func:`popularity_columns`); pass None
    only for features without popularity blocks, otherwise held-out titles would keep a trace of their watches.
    """
    if not np.array_equal(train.items.title_ids, score.items.title_ids):
        raise ValueError("train and score phases must share the week's title rows")
    held = holdout_titles(score.catalogue, score.items.is_tv, share, seed)
    keep = ~held[train.labels.title_rows]
    train_held = WeekData(
        catalogue=train.catalogue,
        items=_hide_items(train.items, held, popularity),
        users=_without_titles(train.users, held),
        labels=Interactions(train.labels.user_rows[keep], train.labels.title_rows[keep]),
        history_counts=np.where(held, 0, train.history_counts),
    )
    training = training_set(train_held)
    masks = {(HOLDOUT, "movie"): held & ~score.items.is_tv, (HOLDOUT, "tv"): held & score.items.is_tv}
    context = evaluation_context(score, masks)
    return HoldoutSplit(held_out=held, training=training, score=score,
                        score_items=_hide_items(score.items, held, popularity),
                        score_users=_without_titles(score.users, held), context=context, share=share, seed=seed)
