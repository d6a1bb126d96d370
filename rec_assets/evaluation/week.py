"""Evaluation and recommendations of one scoring week (pure code: no dagster import).

Scoring reads each user's history in X' and the week's item features (cold titles with a zero ID
embedding); titles the user watched in X' are excluded from the lists. The truth is the Y' watches of
titles not already watched in X' (those can never be recommended, so they would only cap recall).
Movies and TV series are ranked separately, warm and cold-start candidates separately.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from rec_assets.model.inputs import WeekData
from rec_assets.evaluation.baselines import popularity_top_k, random_top_k
from rec_assets.evaluation.metrics import DEFAULT_TOP_K, candidate_masks, evaluate_segments
from rec_assets.evaluation.scoring import CSR, top_k
from rec_assets.model.checkpoint import attention_weights, embed_items, iter_user_embeddings, load_checkpoint
from rec_assets.model.data import UserData

BASELINES = ("random", "popularity")


@dataclass
class WeekEvaluation:
    metrics: pd.DataFrame  # variant, candidate_set, category, metric, value, evaluated_users
    attention: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    scored_pairs: dict[str, int] = field(default_factory=dict)


def history_exclusion(users: UserData) -> CSR:
    user_rows = np.repeat(np.arange(users.n_users, dtype=np.int64), np.diff(users.history_offsets))
    return CSR.from_pairs(user_rows, users.history_items, users.n_users)


def new_watch_truth(data: WeekData, exclusion: CSR) -> tuple[np.ndarray, np.ndarray]:
    """Y' (user row, title row) pairs minus titles the user already watched in X'."""
    n_titles = data.items.n_titles
    watched = np.repeat(np.arange(exclusion.n_rows, dtype=np.int64), np.diff(exclusion.offsets)) * n_titles \
        + np.asarray(exclusion.indices, dtype=np.int64)
    keys = data.labels.user_rows * n_titles + data.labels.title_rows
    new = ~np.isin(keys, watched)
    return data.labels.user_rows[new], data.labels.title_rows[new]


def subset_users(users: UserData, rows: np.ndarray) -> UserData:
    """The users of ``rows`` (sorted), with their histories, in that order."""
    counts = np.diff(users.history_offsets)[rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    items = np.concatenate([users.history_items[users.history_offsets[r]:users.history_offsets[r + 1]] for r in rows]) \
        if len(rows) else np.zeros(0, dtype=np.int64)
    return UserData(users.user_ids[rows], users.feature_codes[rows], list(users.feature_cardinalities), offsets,
                    items.astype(np.int64))


def remap_truth(truth: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    position = np.full(int(rows.max()) + 1 if len(rows) else 0, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    return position[truth[0]], truth[1]


def rank_segments(user_embeddings: torch.Tensor, item_embeddings: torch.Tensor, exclusion: CSR,
                  masks: Mapping[tuple[str, str], np.ndarray], k: int, chunk_users: int) -> dict:
    return {
        segment: top_k(user_embeddings, item_embeddings, k, exclude=exclusion, candidate_mask=mask,
                       chunk_users=chunk_users)[0].numpy()
        for segment, mask in masks.items()
    }


def _user_embeddings(model, users: UserData, items, chunk_users: int) -> torch.Tensor:
    parts = [torch.from_numpy(np.asarray(emb)) for _, emb in iter_user_embeddings(model, users, items, chunk_users)]
    return torch.cat(parts) if parts else torch.zeros((0, model.config.embedding_dim))


def evaluate_week(
    data: WeekData,
    checkpoints: Mapping[str, str],
    k: int = DEFAULT_TOP_K,
    seed: int = 0,
    chunk_users: int = 4096,
) -> WeekEvaluation:
    """Metrics of every checkpoint and of the random and popularity baselines on the week's Y' watches."""
    catalogue = data.catalogue
    masks = candidate_masks(catalogue["is_warm"].to_numpy(bool), catalogue["is_cold_start"].to_numpy(bool),
                            data.items.is_tv)
    exclusion_all = history_exclusion(data.users)
    truth_all = new_watch_truth(data, exclusion_all)
    # Only users with a new Y' watch can be evaluated: embed and rank just those.
    rows = np.unique(truth_all[0])
    users = subset_users(data.users, rows)
    exclusion = history_exclusion(users)
    truth = remap_truth(truth_all, rows)
    result = WeekEvaluation(metrics=pd.DataFrame())
    frames = []
    for variant, path in checkpoints.items():
        started = time.perf_counter()
        model = load_checkpoint(path).model
        items_emb = torch.from_numpy(embed_items(model, data.items))
        users_emb = _user_embeddings(model, users, data.items, chunk_users)
        lists = rank_segments(users_emb, items_emb, exclusion, masks, k, chunk_users)
        frames.append(evaluate_segments(lists, truth, masks, k).assign(variant=variant))
        if getattr(model.item_tower, "attention", None) is not None:
            result.attention[variant] = attention_weights(model, data.items)
        result.seconds[variant] = time.perf_counter() - started
        result.scored_pairs[variant] = int(len(rows) * sum(int(m.sum()) for m in masks.values()))
    baseline_lists = {
        "random": {s: random_top_k(len(rows), k, m, exclusion, seed=seed) for s, m in masks.items()},
        "popularity": {s: popularity_top_k(data.history_counts, len(rows), k, m, exclusion) for s, m in masks.items()},
    }
    for name, lists in baseline_lists.items():
        frames.append(evaluate_segments(lists, truth, masks, k).assign(variant=name))
    result.metrics = pd.concat(frames, ignore_index=True)[
        ["variant", "candidate_set", "category", "metric", "value", "evaluated_users"]
    ]
    return result


def recommend(
    data: WeekData,
    checkpoint_path: str,
    k: int,
    list_name: str,
    candidates: np.ndarray,
    chunk_users: int = 4096,
) -> Iterator[pd.DataFrame]:
    """Top-``k`` of ``candidates`` per user and category, chunk by chunk: rows user_id, list, category, rank,
    title_id, score. Already watched titles (X') are excluded; users are all users of the week's data."""
    model = load_checkpoint(checkpoint_path).model
    items_emb = torch.from_numpy(embed_items(model, data.items))
    categories = {"movie": candidates & ~data.items.is_tv, "tv": candidates & data.items.is_tv}
    exclusion = history_exclusion(data.users)
    for rows, user_emb in iter_user_embeddings(model, data.users, data.items, chunk_users):
        rows = np.asarray(rows)
        chunk_exclusion = CSR(
            offsets=(exclusion.offsets[rows[0]:rows[-1] + 2] - exclusion.offsets[rows[0]]),
            indices=exclusion.indices[exclusion.offsets[rows[0]]:exclusion.offsets[rows[-1] + 1]],
        )
        for category, mask in categories.items():
            if not mask.any():
                continue
            indices, scores = top_k(torch.from_numpy(np.asarray(user_emb)), items_emb, k, exclude=chunk_exclusion,
                                    candidate_mask=mask, chunk_users=chunk_users)
            indices, scores = indices.numpy(), scores.numpy()
            valid = indices >= 0
            user_index, rank = np.nonzero(valid)
            yield pd.DataFrame({
                "user_id": data.users.user_ids[rows[user_index]],
                "list": list_name,
                "category": category,
                "rank": (rank + 1).astype(np.int32),
                "title_id": data.items.title_ids[indices[valid]],
                "score": scores[valid].astype(np.float32),
            })
