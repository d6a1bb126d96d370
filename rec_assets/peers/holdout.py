"""The item-holdout protocol of the LightFM paper (Kula 2015, section 4.2), on one scoring week's windows.

:func:`holdout_split` holds out 20% of the week's interacted titles (per category, fixed seed, cold-start titles
excluded) from every training input, resets their popularity features, and ranks them among themselves against
their Y' watches; :func:`lightfm_holdout_split` is the paper's own variant (all titles, per seed, truth in X' and
Y'), scored by :func:`evaluate_lightfm_holdout`. ALS, BPR and popularity are not applicable here (NaN rows).
The protocol in full: docs/design.md, "Item holdout". Pure code: no dagster import.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

import torch

from rec_assets.model.inputs import WeekData
from rec_assets.evaluation.baselines import random_top_k
from rec_assets.features.categorical import interaction_columns
from rec_assets.evaluation.metrics import user_auc, user_hits
from rec_assets.evaluation.scoring import CSR, top_k
from rec_assets.evaluation.week import history_exclusion, remap_truth, subset_users
from rec_assets.model.data import Interactions, ItemFeatures, UserData
from rec_assets.peers.adapters import PeerScores, TrainingSet, training_set
from rec_assets.peers.evaluate import EvaluationContext, evaluation_context, user_values

__all__ = ["HoldoutSplit", "LIGHTFM_HOLDOUT", "LightFMHoldout", "PopularityColumns", "evaluate_lightfm_holdout",
           "holdout_split", "holdout_titles", "interacted_titles", "lightfm_holdout_split", "popularity_columns"]

HOLDOUT = "holdout"
LIGHTFM_HOLDOUT = "lightfm_holdout"
LIGHTFM_KS = (6, 20)


@dataclass(frozen=True)
class PopularityColumns:
    """Categorical columns that encode interactions: popularity bins, and the ``no_views`` column of each field."""

    bins: tuple[int, ...]
    no_views: tuple[int, ...]


def popularity_columns(vocabulary: pd.DataFrame) -> PopularityColumns:
    """From the categorical artifact's ``vocabulary`` frame (field, value, column): every ``popularity_*`` column."""
    bins, no_views = interaction_columns(vocabulary)
    return PopularityColumns(tuple(int(c) for c in bins), tuple(int(c) for c in no_views))


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


def holdout_titles(catalogue: pd.DataFrame, is_tv: np.ndarray, share: float = 0.2, seed: int = 0,
                   eligible: np.ndarray | None = None) -> np.ndarray:
    """bool [n_titles]: ``round(share * n)`` of the ``eligible`` titles per category, drawn with ``seed``; default
    eligible: the week's warm titles (and any title with an ID)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    if eligible is None:
        eligible = catalogue["is_warm"].to_numpy(bool) | catalogue["id_known"].to_numpy(bool)
    eligible = np.asarray(eligible, dtype=bool)
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


def _training_without(train: WeekData, held: np.ndarray, popularity: PopularityColumns | None) -> TrainingSet:
    """The training phase with every trace of the ``held`` titles removed (events, labels, ID, popularity bits)."""
    keep = ~held[train.labels.title_rows]
    return training_set(WeekData(
        catalogue=train.catalogue,
        items=_hide_items(train.items, held, popularity),
        users=_without_titles(train.users, held),
        labels=Interactions(train.labels.user_rows[keep], train.labels.title_rows[keep]),
        history_counts=np.where(held, 0, train.history_counts),
    ))


def holdout_split(train: WeekData, score: WeekData, popularity: PopularityColumns | None, share: float = 0.2,
                  seed: int = 0) -> HoldoutSplit:
    """The item-holdout protocol's training set and scoring inputs for one week (see the module docstring).

    ``popularity``: the categorical columns to reset for held-out titles (:func:`popularity_columns`); pass None
    only for features without popularity blocks, otherwise held-out titles would keep a trace of their watches.
    """
    if not np.array_equal(train.items.title_ids, score.items.title_ids):
        raise ValueError("train and score phases must share the week's title rows")
    held = holdout_titles(score.catalogue, score.items.is_tv, share, seed)
    training = _training_without(train, held, popularity)
    masks = {(HOLDOUT, "movie"): held & ~score.items.is_tv, (HOLDOUT, "tv"): held & score.items.is_tv}
    context = evaluation_context(score, masks)
    return HoldoutSplit(held_out=held, training=training, score=score,
                        score_items=_hide_items(score.items, held, popularity),
                        score_users=_without_titles(score.users, held), context=context, share=share, seed=seed)


# --- the LightFM paper's protocol: 20% of all titles, truth in X' and Y' -----------------------------------------


def interacted_titles(*phases: WeekData) -> np.ndarray:
    """bool [n_titles]: titles with an event in any history or label window of the given phases."""
    seen = np.zeros(phases[0].items.n_titles, dtype=bool)
    for data in phases:
        seen[data.users.history_items] = True
        seen[data.labels.title_rows] = True
    return seen


@dataclass
class LightFMHoldout:
    held_out: np.ndarray  # bool [n_titles]
    training: TrainingSet  # training phase without any trace of a held-out title
    score_items: ItemFeatures  # scoring input: held-out titles without ID / popularity
    score_users: UserData  # scoring input: X' histories (every user) without held-out titles
    rows: np.ndarray  # user rows (of score_users) with a held-out title in X' or Y', sorted
    exclusion: CSR  # over ``rows``: their X' without held-out titles (so nothing among the candidates)
    truth: tuple[np.ndarray, np.ndarray]  # (position in rows, title row): held-out titles of X' and Y'
    masks: dict[tuple[str, str], np.ndarray]  # (lightfm_holdout, movie | tv | all) -> held-out titles of that kind
    share: float
    seed: int

    def summary(self) -> dict:
        return {"share": self.share, "seed": self.seed, "held_out_titles": int(self.held_out.sum()),
                "evaluated_users": int(len(self.rows)), "truth_pairs": int(len(self.truth[0]))}


def lightfm_holdout_split(train: WeekData, score: WeekData, popularity: PopularityColumns | None,
                          share: float = 0.2, seed: int = 0) -> LightFMHoldout:
    """Hold out ``share`` of every interacted title (per category, ``seed``) with all their interactions; see the
    module docstring. ``popularity`` as for :func:`holdout_split`."""
    if not np.array_equal(train.items.title_ids, score.items.title_ids):
        raise ValueError("train and score phases must share the week's title rows")
    held = holdout_titles(score.catalogue, score.items.is_tv, share, seed,
                          eligible=interacted_titles(train, score))
    history_users = np.repeat(np.arange(score.users.n_users, dtype=np.int64), np.diff(score.users.history_offsets))
    users = np.concatenate([history_users, score.labels.user_rows])
    titles = np.concatenate([score.users.history_items, score.labels.title_rows])
    inside = held[titles]
    pairs = CSR.from_pairs(users[inside], titles[inside], score.users.n_users)  # distinct (user, title)
    rows = np.flatnonzero(np.diff(pairs.offsets) > 0)
    truth_users = np.repeat(np.arange(score.users.n_users, dtype=np.int64), np.diff(pairs.offsets))
    score_users = _without_titles(score.users, held)
    evaluated = subset_users(score_users, rows)
    is_tv = score.items.is_tv
    masks = {(LIGHTFM_HOLDOUT, "movie"): held & ~is_tv, (LIGHTFM_HOLDOUT, "tv"): held & is_tv,
             (LIGHTFM_HOLDOUT, "all"): held.copy()}
    return LightFMHoldout(held_out=held, training=_training_without(train, held, popularity),
                          score_items=_hide_items(score.items, held, popularity), score_users=score_users,
                          rows=rows, exclusion=history_exclusion(evaluated),
                          truth=remap_truth((truth_users, np.asarray(pairs.indices, np.int64)), rows),
                          masks=masks, share=share, seed=seed)


def evaluate_lightfm_holdout(split: LightFMHoldout, scores: PeerScores | None = None, *, random_seed: int = 0,
                             ks: tuple[int, ...] = LIGHTFM_KS, chunk_users: int = 4096) -> pd.DataFrame:
    """Per evaluated user and category: columns category, user_id, n_truth, ``p@k``/``r@k`` per k, auc.

    ``scores``: a system's embeddings of ``split.score_items`` / ``split.score_users`` (every user row); None is the
    random baseline (``evaluation.baselines.random_top_k`` lists, uniform random scores for the AUC). Lists are
    ranked by ``scoring.top_k`` among each category's held-out titles; AUC is ``metrics.user_auc`` over them.
    """
    k_max = max(ks)
    n = len(split.rows)
    frames = []
    if scores is not None:
        user_emb = torch.from_numpy(np.ascontiguousarray(scores.user_embeddings[split.rows], dtype=np.float32))
        item_emb = torch.from_numpy(np.ascontiguousarray(scores.item_embeddings, dtype=np.float32))
    generator = torch.Generator().manual_seed(random_seed)
    for (_, category), mask in split.masks.items():
        if not mask.any() or n == 0:
            continue
        candidates = np.flatnonzero(mask)
        if scores is None:
            lists = random_top_k(n, k_max, mask, split.exclusion, seed=random_seed)
            dense = torch.rand((n, len(candidates)), generator=generator, dtype=torch.float64).numpy()
        else:
            lists = top_k(user_emb, item_emb, k_max, exclude=split.exclusion, candidate_mask=mask,
                          chunk_users=chunk_users)[0].numpy()
            columns = item_emb[torch.from_numpy(candidates)].T.contiguous()
            dense = np.concatenate([(user_emb[s:s + chunk_users] @ columns).numpy()
                                    for s in range(0, n, chunk_users)])
        hits = user_hits(lists, split.truth, k_max, candidate_mask=mask)
        position = np.full(mask.size, -1, dtype=np.int64)
        position[candidates] = np.arange(len(candidates))
        truth_mask = np.zeros((n, len(candidates)), dtype=bool)
        inside = mask[split.truth[1]]
        truth_mask[split.truth[0][inside], position[split.truth[1][inside]]] = True
        values = user_values({(LIGHTFM_HOLDOUT, category): hits}, split.score_users.user_ids[split.rows], ks)
        values["auc"] = user_auc(truth_mask, dense)[hits.evaluated]
        frames.append(values.drop(columns="candidate_set"))
    if not frames:
        return pd.DataFrame(columns=["category", "user_id", "n_truth",
                                     *(f"{m}@{k}" for k in ks for m in ("p", "r")), "auc"])
    return pd.concat(frames, ignore_index=True)
