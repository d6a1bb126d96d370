"""A peer's embeddings ranked and scored exactly as the two-tower variants are (``evaluation.week``'s helpers).

Within a segment, titles a peer cannot score are left out of its ranking but stay in the truth; a segment with no
scorable candidate is *not applicable*: NaN values, and the evaluated users every other system has there. Pure code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from rec_assets.model.inputs import WeekData
from rec_assets.evaluation.metrics import DEFAULT_TOP_K, METRICS, candidate_masks, evaluate_segments
from rec_assets.evaluation.week import remap_truth, history_exclusion, new_watch_truth, rank_segments, subset_users
from rec_assets.model.data import ItemFeatures, UserData
from rec_assets.peers.adapters import FittedPeer, PeerScores, TrainingSet, adapter

__all__ = [
    "EvaluationContext",
    "evaluate_fitted",
    "evaluate_scores",
    "evaluation_context",
    "fit_and_evaluate",
    "not_applicable_frame",
    "user_values",
    "week_masks",
]


def week_masks(data: WeekData) -> dict[tuple[str, str], np.ndarray]:
    """The four warm/cold x movie/tv segments of the week, exactly as ``evaluate_week`` builds them."""
    catalogue = data.catalogue
    return candidate_masks(catalogue["is_warm"].to_numpy(bool), catalogue["is_cold_start"].to_numpy(bool),
                           data.items.is_tv)


@dataclass
class EvaluationContext:
    """Who is evaluated and against what, built once per (week, protocol) by ``evaluation.week``'s helpers."""

    rows: np.ndarray  # user rows (of the data's UserData) with a new watch in the label window, sorted
    users: UserData  # those users, with their histories
    exclusion: Any  # CSR over ``rows``: titles already watched in the history window
    truth: tuple[np.ndarray, np.ndarray]  # (position in rows, title row) of new watches
    masks: dict[tuple[str, str], np.ndarray]
    n_titles: int = 0
    extra: dict = field(default_factory=dict)


def evaluation_context(data: WeekData, masks: Mapping[tuple[str, str], np.ndarray] | None = None) -> EvaluationContext:
    """Exclusion = each user's history window, truth = label-window watches minus already-watched titles, users =
    those with such a watch (the same construction as ``evaluation.week.evaluate_week``)."""
    exclusion_all = history_exclusion(data.users)
    truth_all = new_watch_truth(data, exclusion_all)
    rows = np.unique(truth_all[0])
    users = subset_users(data.users, rows)
    return EvaluationContext(rows=rows, users=users, exclusion=history_exclusion(users),
                             truth=remap_truth(truth_all, rows), masks=dict(masks if masks is not None
                                                                             else week_masks(data)),
                             n_titles=data.items.n_titles)


def not_applicable_frame(ctx: EvaluationContext, segments, k: int) -> pd.DataFrame:
    """Rows of segments a system cannot rank: NaN values, the evaluated-user count every other system gets."""
    empty = {s: np.full((len(ctx.rows), k), -1, dtype=np.int64) for s in segments}
    frame = evaluate_segments(empty, ctx.truth, {s: ctx.masks[s] for s in segments}, k)
    frame["value"] = np.nan
    return frame


def evaluate_scores(scores: PeerScores, ctx: EvaluationContext, k: int = DEFAULT_TOP_K, chunk_users: int = 4096,
                    user_rows: np.ndarray | None = None, per_user: dict | None = None) -> pd.DataFrame:
    """Metrics of one system's embeddings: candidate_set, category, metric, value, evaluated_users.

    ``user_rows``: the row of each evaluated user in ``scores.user_embeddings`` (default ``ctx.rows``, i.e. the
    embeddings are of every user of the week's UserData). ``per_user``: filled with the ranked segments'
    ``metrics.UserHits`` (rows follow ``ctx.rows``; see :func:`user_values`).
    """
    rows = ctx.rows if user_rows is None else user_rows
    user_emb = torch.from_numpy(np.ascontiguousarray(scores.user_embeddings[rows], dtype=np.float32))
    item_emb = torch.from_numpy(np.ascontiguousarray(scores.item_embeddings, dtype=np.float32))
    ranking_masks = {s: m & scores.scorable for s, m in ctx.masks.items() if (m & scores.scorable).any()}
    skipped = [s for s, m in ctx.masks.items() if s not in ranking_masks and m.any()]
    empty_segments = [s for s, m in ctx.masks.items() if not m.any()]
    lists = rank_segments(user_emb, item_emb, ctx.exclusion, ranking_masks, k, chunk_users)
    # An empty candidate set is evaluated as any system's would be (nobody evaluated, NaN precision): -1 lists.
    lists.update({s: np.full((len(rows), k), -1, dtype=np.int64) for s in empty_segments})
    hits: dict = {}
    frames = [evaluate_segments(lists, ctx.truth, {s: ctx.masks[s] for s in lists}, k, per_user=hits)]
    if per_user is not None:
        per_user.update({s: h for s, h in hits.items() if s not in empty_segments})
    if skipped:
        frames.append(not_applicable_frame(ctx, skipped, k))
    frame = pd.concat(frames, ignore_index=True)
    order = {s: i for i, s in enumerate(ctx.masks)}
    frame["_o"] = [order[(a, b)] * len(METRICS) + METRICS.index(m)
                   for a, b, m in zip(frame.candidate_set, frame.category, frame.metric)]
    return frame.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)


def evaluate_fitted(fitted: FittedPeer, data: WeekData, ctx: EvaluationContext | None = None, k: int = DEFAULT_TOP_K,
                    chunk_users: int = 4096, embed_users: UserData | None = None,
                    embed_items: ItemFeatures | None = None, per_user: dict | None = None,
                    ) -> tuple[pd.DataFrame, float]:
    """(metrics frame, scoring seconds) of a fitted peer on ``data``'s history -> labels.

    ``embed_users`` / ``embed_items`` replace the data's users / items as the model's input (the holdout protocol
    hides held-out titles from them); exclusion and truth always come from ``data``.
    """
    started = time.perf_counter()
    ctx = ctx or evaluation_context(data)
    scores = fitted.embed(data.items if embed_items is None else embed_items,
                           data.users if embed_users is None else embed_users)
    if scores.user_embeddings.shape[0] != data.users.n_users:
        raise ValueError("embed returned a user matrix that does not follow the data's users")
    frame = evaluate_scores(scores, ctx, k, chunk_users, per_user=per_user)
    return frame, time.perf_counter() - started


def fit_and_evaluate(name: str, config: Any, training: TrainingSet, data: WeekData, ctx: EvaluationContext,
                     k: int = DEFAULT_TOP_K, **kwargs) -> tuple[pd.DataFrame, float, float]:
    """(metrics, train seconds, score seconds) of peer ``name`` fitted on ``training`` and evaluated on ``data``."""
    peer = adapter(name)
    started = time.perf_counter()
    fitted = peer.fit(training, config) if config is not None else peer.fit(training)
    train_seconds = time.perf_counter() - started
    frame, score_seconds = evaluate_fitted(fitted, data, ctx, k, **kwargs)
    return frame, train_seconds, score_seconds


def user_values(hits: Mapping[tuple[str, str], Any], user_ids: np.ndarray,
                ks: tuple[int, ...] = (DEFAULT_TOP_K,)) -> pd.DataFrame:
    """Per-user values of ranked segments (``segment -> metrics.UserHits`` over the same user rows as ``user_ids``):
    columns candidate_set, category, user_id, n_truth, ``p@k`` and ``r@k`` per k; evaluated users only."""
    frames = []
    for (candidate_set, category), h in hits.items():
        evaluated = h.evaluated
        columns = {"candidate_set": candidate_set, "category": category,
                   "user_id": np.asarray(user_ids)[evaluated], "n_truth": h.truth_count[evaluated]}
        for k in ks:
            columns[f"p@{k}"] = h.precision(k)
            columns[f"r@{k}"] = h.recall(k)
        frames.append(pd.DataFrame(columns))
    columns = ["candidate_set", "category", "user_id", "n_truth", *(f"{m}@{k}" for k in ks for m in ("p", "r"))]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
