"""Non-learned baselines, producing top-K lists that go through the same metrics as the two-tower variants.

``random`` is a uniform K-subset of each user's unwatched candidates (a top-K of float64 keys, so ties never
happen); ``popularity`` ranks by X' views, the same for everybody, and so is meaningful for warm titles only. Both
go through :func:`rec_assets.evaluation.scoring.top_k_from_scores` (the models' exclusion, padding and chunking).
Why float64, and the chunk size: docs/design.md, "Baselines". Pure code: no dagster import.
"""

from __future__ import annotations

import numpy as np
import torch

from rec_assets.evaluation.scoring import CSR, top_k_from_scores

__all__ = ["expected_random_precision", "expected_random_recall", "popularity_top_k", "random_top_k"]


def random_top_k(
    n_users: int,
    k: int,
    candidate_mask: np.ndarray | None = None,
    exclude: CSR | None = None,
    *,
    n_items: int | None = None,
    seed: int = 0,
    chunk_users: int = 1024,
) -> np.ndarray:
    """Uniformly random top-``k`` lists: int64 [n_users, k] title indices, -1 padded.

    ``n_items`` is needed only without ``candidate_mask``. The same (seed, inputs, chunk_users) give the same lists.
    """
    if candidate_mask is not None:
        n_items = int(np.asarray(candidate_mask).shape[0])
    elif n_items is None:
        raise ValueError("give candidate_mask or n_items")
    generator = torch.Generator().manual_seed(seed)

    def random_keys(start: int, stop: int, candidates: torch.Tensor) -> torch.Tensor:
        return torch.rand((stop - start, candidates.numel()), generator=generator, dtype=torch.float64)

    items, _ = top_k_from_scores(random_keys, n_users, n_items, k, exclude, candidate_mask, chunk_users,
                                 score_dtype=torch.float64)
    return items.numpy()


def popularity_top_k(
    view_counts: np.ndarray,
    n_users: int,
    k: int,
    candidate_mask: np.ndarray | None = None,
    exclude: CSR | None = None,
    *,
    chunk_users: int = 1024,
) -> np.ndarray:
    """Most-viewed-first top-``k`` lists: int64 [n_users, k] title indices, -1 padded.

    ``view_counts``: [n_items] views per title in the history window X' (as of its end, never later events).
    """
    counts = np.asarray(view_counts)
    if counts.ndim != 1:
        raise ValueError("view_counts must be 1-d [n_items]")
    n_items = counts.shape[0]
    # Rank position in a stable most-viewed-first order; scoring by -rank gives distinct scores, so the
    # count-then-lower-index order is kept exactly and the scorer's tie pass never runs.
    order = np.argsort(-counts.astype(np.float64), kind="stable")
    rank = np.empty(n_items, dtype=np.int64)
    rank[order] = np.arange(n_items)
    neg_rank = torch.as_tensor(-rank, dtype=torch.float64)

    def popularity_scores(start: int, stop: int, candidates: torch.Tensor) -> torch.Tensor:
        return neg_rank[candidates].expand(stop - start, -1).clone()

    items, _ = top_k_from_scores(popularity_scores, n_users, n_items, k, exclude, candidate_mask, chunk_users,
                                 score_dtype=torch.float64)
    return items.numpy()


def _expected_random(n_available, n_relevant, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_available = np.asarray(n_available, dtype=np.float64)
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    if np.any(n_relevant > n_available):
        raise ValueError("a user has more relevant titles than available candidates")
    evaluated = n_relevant > 0
    drawn = np.minimum(k, n_available[evaluated])
    # K draws without replacement from N titles of which T are relevant: E[hits] = min(K, N) * T / N.
    expected_hits = drawn * n_relevant[evaluated] / n_available[evaluated]
    return expected_hits, n_relevant[evaluated], evaluated


def expected_random_precision(n_available, n_relevant, k: int) -> float:
    """Expected Precision@K of :func:`random_top_k`: the mean over evaluated users of E[hits] / K.

    ``n_available[u]``: candidates user u can be recommended (candidate set minus watched titles);
    ``n_relevant[u]``: the user's truth titles among those. Users with ``n_relevant == 0`` are not evaluated.
    NaN when nobody is evaluated, as for the measured metric.
    """
    expected_hits, _, evaluated = _expected_random(n_available, n_relevant, k)
    return float(np.mean(expected_hits / k)) if evaluated.any() else float("nan")


def expected_random_recall(n_available, n_relevant, k: int) -> float:
    """Expected Recall@K of :func:`random_top_k` when every truth title is available: mean of min(K, N) / N."""
    expected_hits, relevant, evaluated = _expected_random(n_available, n_relevant, k)
    return float(np.mean(expected_hits / relevant)) if evaluated.any() else float("nan")
