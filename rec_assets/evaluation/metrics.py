"""Top-K metrics of the paper's section 4.1, computed per candidate set (warm / cold) and category (movie / tv).

Truth = a user's distinct Y' watches within the candidate set and category; only users with truth are evaluated.
Precision@K divides by K even for a padded list, Recall@K by the user's truth count; coverage counts distinct
titles in the evaluated users' lists. A segment with nobody evaluated has NaN P/R and zero coverage. The lists are
taken as given (a duplicate or non-candidate title raises ValueError). Per-user values: :func:`user_hits`,
:func:`user_auc`. Definitions in full: docs/design.md, "Metrics". Pure code: no dagster import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rec_assets.evaluation.scoring import CSR

__all__ = [
    "CANDIDATE_SETS",
    "CATEGORIES",
    "DEFAULT_TOP_K",
    "METRICS",
    "candidate_masks",
    "UserHits",
    "evaluate_segments",
    "evaluate_top_k",
    "segment_user_hits",
    "user_auc",
    "user_hits",
]

METRICS: tuple[str, ...] = ("precision", "recall", "coverage", "converted_coverage")
CANDIDATE_SETS: tuple[str, ...] = ("warm", "cold")
CATEGORIES: tuple[str, ...] = ("movie", "tv")
DEFAULT_TOP_K = 6  # the paper's list length K; REC_TOP_K (EvaluationResource.top_k) defaults to it

Truth = CSR | tuple[np.ndarray, np.ndarray]


def _truth_pairs(truth: Truth, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """(user_rows, item_rows) int64 from a CSR over user rows or from a (user_rows, item_rows) tuple."""
    if isinstance(truth, CSR):  # checked before the tuple case: a CSR is also a tuple
        if truth.n_rows != n_users:
            raise ValueError(f"truth CSR has {truth.n_rows} rows, recommended has {n_users} users")
        truth.validate(n_users, np.iinfo(np.int64).max, "truth")
        offsets = np.asarray(truth.offsets, dtype=np.int64)
        users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(offsets))
        items = np.asarray(truth.indices, dtype=np.int64)
    else:
        users, items = (np.asarray(a, dtype=np.int64).ravel() for a in truth)
        if users.shape != items.shape:
            raise ValueError(f"truth pairs differ in length: {users.size} users vs {items.size} items")
    if users.size and (users.min() < 0 or users.max() >= n_users):
        raise ValueError(f"truth user row out of range [0, {n_users})")
    if items.size and items.min() < 0:
        raise ValueError("truth title index is negative")
    return users, items


@dataclass(frozen=True)
class UserHits:
    """Per user row of top-K lists: ``hit[u, j]`` is true when list position j of user u is a truth title;
    ``truth_count[u]`` the user's distinct truth titles (0: not evaluated). Values @k for any k <= K."""

    recommended: np.ndarray  # int64 [n_users, K], -1 for an empty slot
    hit: np.ndarray  # bool [n_users, K]
    truth_count: np.ndarray  # int64 [n_users]

    @property
    def k(self) -> int:
        return int(self.hit.shape[1])

    @property
    def evaluated(self) -> np.ndarray:
        return self.truth_count > 0

    def _k(self, k: int | None) -> int:
        k = self.k if k is None else int(k)
        if not 1 <= k <= self.k:
            raise ValueError(f"k must be in [1, {self.k}], got {k}")
        return k

    def hits(self, k: int | None = None) -> np.ndarray:
        """int64 [n_users]: hits among the first ``k`` positions of each list."""
        return self.hit[:, :self._k(k)].sum(axis=1, dtype=np.int64)

    def precision(self, k: int | None = None) -> np.ndarray:
        """float [n_evaluated]: hits / k of each evaluated user (an empty slot is a miss)."""
        k = self._k(k)
        return self.hits(k)[self.evaluated] / k

    def recall(self, k: int | None = None) -> np.ndarray:
        """float [n_evaluated]: hits / truth count of each evaluated user (not capped at k)."""
        return self.hits(k)[self.evaluated] / self.truth_count[self.evaluated]


def user_hits(
    recommended: np.ndarray,
    truth: Truth,
    k: int | None = None,
    *,
    candidate_mask: np.ndarray | None = None,
) -> UserHits:
    """Per-user hits of top-K lists against the truth; arguments as :func:`evaluate_top_k`'s."""
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be [n_users, k], got shape {rec.shape}")
    if not np.issubdtype(rec.dtype, np.integer):
        raise ValueError(f"recommended must hold integer title indices, got {rec.dtype}")
    if k is None:
        k = rec.shape[1]
    if not 1 <= k <= rec.shape[1]:
        raise ValueError(f"k must be in [1, {rec.shape[1]}], got {k}")
    rec = rec[:, :k].astype(np.int64)
    n_users = rec.shape[0]
    if rec.size and rec.min() < -1:
        raise ValueError("recommended holds an index below -1")
    present = rec >= 0
    ordered = np.sort(rec, axis=1)
    if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)):
        raise ValueError("a recommended list names the same title twice")

    users, items = _truth_pairs(truth, n_users)
    if candidate_mask is not None:
        mask = np.asarray(candidate_mask)
        if mask.dtype != bool or mask.ndim != 1:
            raise ValueError("candidate_mask must be a 1-d bool array")
        if items.size and items.max() >= mask.size:
            raise ValueError(f"truth title index out of range [0, {mask.size})")
        if rec.size and rec.max() >= mask.size:
            raise ValueError(f"recommended title index out of range [0, {mask.size})")
        if np.any(present & ~mask[np.where(present, rec, 0)]):
            raise ValueError("a recommended title is outside the candidate set")
        inside = mask[items]
        users, items = users[inside], items[inside]

    # A (user, title) pair as one int64 key; the stride exceeds every title index on either side.
    stride = int(max(items.max(initial=-1), rec.max(initial=-1))) + 1
    truth_keys = np.unique(users * stride + items)
    truth_count = np.bincount(truth_keys // stride, minlength=n_users).astype(np.int64)

    rec_keys = np.arange(n_users, dtype=np.int64)[:, None] * stride + rec
    if truth_keys.size:
        pos = np.minimum(np.searchsorted(truth_keys, rec_keys), truth_keys.size - 1)
        # An empty slot (-1) makes a key of the previous user's row; `present` keeps it from matching.
        hit = present & (truth_keys[pos] == rec_keys)
    else:
        hit = np.zeros(rec.shape, dtype=bool)
    return UserHits(recommended=rec, hit=hit, truth_count=truth_count)


def evaluate_top_k(
    recommended: np.ndarray,
    truth: Truth,
    k: int | None = None,
    *,
    candidate_mask: np.ndarray | None = None,
) -> dict[str, float | int]:
    """Precision@K, Recall@K, Coverage@K, Converted Coverage@K and the evaluated-user count of top-K lists.

    Args:
        recommended: int [n_users, >= k] title indices per user row, best first, -1 for an empty slot.
        truth: the Y' watches, either a :class:`CSR` over the same user rows or a ``(user_rows, item_rows)`` tuple
            of parallel arrays (duplicates allowed).
        k: the K of the metrics; the first ``k`` columns of ``recommended`` are used. Default: all columns.
        candidate_mask: bool [n_items] of the candidate set and category evaluated. Truth titles outside it are
            dropped before anything is counted (see the module docstring), and a recommended title outside it
            raises ValueError. None: the truth is taken as already restricted.

    Returns:
        ``{"precision", "recall"}`` as fractions in [0, 1] (NaN without evaluated users), ``{"coverage",
        "converted_coverage", "evaluated_users"}`` as ints. The means of :func:`user_hits`' per-user values.
    """
    per_user = user_hits(recommended, truth, k, candidate_mask=candidate_mask)
    return _aggregate(per_user)


def _aggregate(per_user: UserHits) -> dict[str, float | int]:
    evaluated = per_user.evaluated
    n_evaluated = int(evaluated.sum())
    if n_evaluated == 0:
        precision = recall = float("nan")
    else:
        precision = float(np.mean(per_user.precision()))
        recall = float(np.mean(per_user.recall()))
    rec = per_user.recommended
    listed = rec[evaluated]
    coverage = int(np.unique(listed[listed >= 0]).size)
    converted_coverage = int(np.unique(rec[per_user.hit]).size)  # a hit implies truth, so its user is evaluated
    return {
        "precision": precision,
        "recall": recall,
        "coverage": coverage,
        "converted_coverage": converted_coverage,
        "evaluated_users": n_evaluated,
    }


def user_auc(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """float [n_users]: ROC AUC of each user's ``scores`` [n_users, n_candidates] against ``truth`` (bool, same
    shape); ties count one half. NaN for a user whose candidates are all truth or all not truth (AUC undefined).

    Mann-Whitney form on ``scipy.stats.rankdata`` mid-ranks, all users at once: the value of
    ``sklearn.metrics.roc_auc_score`` per user (a test checks it), which costs ~4 ms per call here.
    """
    from scipy.stats import rankdata

    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if truth.shape != scores.shape or truth.ndim != 2:
        raise ValueError(f"truth and scores must be the same [n_users, n_candidates], got {truth.shape} and "
                         f"{scores.shape}")
    n_pos = truth.sum(axis=1).astype(np.float64)
    n_neg = truth.shape[1] - n_pos
    ranks = rankdata(scores, axis=1) if scores.size else scores
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (np.where(truth, ranks, 0.0).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def candidate_masks(is_warm: np.ndarray, is_cold: np.ndarray, is_tv: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """The four evaluation segments as bool masks over title rows: ``{(candidate_set, category): mask}``.

    A title neither warm nor cold (never watched up to the end of Y') is in no segment.
    """
    is_warm, is_cold, is_tv = (np.asarray(a, dtype=bool) for a in (is_warm, is_cold, is_tv))
    if np.any(is_warm & is_cold):
        raise ValueError("a title is both warm and cold")
    return {
        ("warm", "movie"): is_warm & ~is_tv,
        ("warm", "tv"): is_warm & is_tv,
        ("cold", "movie"): is_cold & ~is_tv,
        ("cold", "tv"): is_cold & is_tv,
    }


def segment_user_hits(
    recommended: Mapping[tuple[str, str], np.ndarray],
    truth: Truth,
    masks: Mapping[tuple[str, str], np.ndarray],
    k: int = DEFAULT_TOP_K,
) -> dict[tuple[str, str], UserHits]:
    """:func:`user_hits` of each segment's lists (``recommended`` and ``masks`` as for :func:`evaluate_segments`)."""
    result = {}
    for segment, lists in recommended.items():
        if segment not in masks:
            raise KeyError(f"no candidate mask for segment {segment}")
        result[segment] = user_hits(lists, truth, k, candidate_mask=masks[segment])
    return result


def evaluate_segments(
    recommended: Mapping[tuple[str, str], np.ndarray],
    truth: Truth,
    masks: Mapping[tuple[str, str], np.ndarray],
    k: int = DEFAULT_TOP_K,
    *,
    per_user: dict | None = None,
) -> pd.DataFrame:
    """Metrics of several segments as the long frame the report reads.

    ``recommended[(candidate_set, category)]`` are the top-K lists ranked within that segment's candidates and
    ``masks`` the segments' candidate masks (see :func:`candidate_masks`). Returns columns candidate_set, category,
    metric, value, evaluated_users: one row per segment and metric. The caller adds scoring_week and variant.
    ``per_user``: when given, filled with each segment's :class:`UserHits` (the values the means are of).
    """
    hits = segment_user_hits(recommended, truth, masks, k)
    if per_user is not None:
        per_user.update(hits)
    rows = []
    for segment, segment_hits in hits.items():
        result = _aggregate(segment_hits)
        for metric in METRICS:
            rows.append((segment[0], segment[1], metric, float(result[metric]), result["evaluated_users"]))
    return pd.DataFrame(rows, columns=["candidate_set", "category", "metric", "value", "evaluated_users"])
