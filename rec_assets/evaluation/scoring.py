"""Top-K retrieval from two-tower embeddings: one matrix product per user chunk, then ``torch.topk``.

The contract of :func:`top_k`, which the evaluation and the recommendation table rely on: scores are logits (ranked
before the sigmoid, which saturates); watched and non-candidate titles are never returned; short rows are padded
with -1 / -inf; ties go to the lower title index, the K-th place included; at most ``chunk_users x n_candidates``
scores exist at once. In full: docs/design.md, "Top-K retrieval". Pure code: no dagster import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

__all__ = ["CSR", "top_k", "top_k_from_scores"]


class CSR(NamedTuple):
    """A per-user list of title indices in compressed-sparse-row form.

    ``indices[offsets[u]:offsets[u + 1]]`` are the title indices of user row ``u``. ``offsets`` is int64 of length
    ``n_rows + 1``, starts at 0, never decreases and ends at ``len(indices)``.
    """

    offsets: np.ndarray
    indices: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(len(self.offsets)) - 1

    @classmethod
    def from_pairs(cls, rows, cols, n_rows: int, *, dedupe: bool = True) -> CSR:
        """Build from parallel arrays of (row, col) pairs; rows need not be sorted.

        With ``dedupe`` (the default) a pair that occurs several times (a title watched twice) is kept once, and each
        row's columns come out sorted ascending.
        """
        rows = np.asarray(rows, dtype=np.int64).ravel()
        cols = np.asarray(cols, dtype=np.int64).ravel()
        if rows.shape != cols.shape:
            raise ValueError(f"rows and cols differ in length: {rows.size} vs {cols.size}")
        if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
            raise ValueError(f"row index out of range [0, {n_rows}): min {rows.min()}, max {rows.max()}")
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
        if dedupe and rows.size:
            keep = np.ones(rows.size, dtype=bool)
            keep[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
            rows, cols = rows[keep], cols[keep]
        offsets = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=offsets[1:])
        return cls(offsets, cols)

    def row(self, r: int) -> np.ndarray:
        return self.indices[self.offsets[r] : self.offsets[r + 1]]

    def validate(self, n_rows: int, n_cols: int, what: str = "CSR") -> None:
        """Raise ValueError unless this is a well-formed CSR of ``n_rows`` rows over ``n_cols`` columns."""
        offsets = np.asarray(self.offsets)
        indices = np.asarray(self.indices)
        if offsets.ndim != 1 or len(offsets) != n_rows + 1:
            raise ValueError(f"{what}: offsets must have n_rows + 1 = {n_rows + 1} entries, got {offsets.shape}")
        if offsets[0] != 0 or offsets[-1] != len(indices):
            raise ValueError(f"{what}: offsets must start at 0 and end at len(indices) = {len(indices)}")
        if np.any(np.diff(offsets) < 0):
            raise ValueError(f"{what}: offsets decrease")
        if len(indices) and (indices.min() < 0 or indices.max() >= n_cols):
            raise ValueError(f"{what}: title index out of range [0, {n_cols}): min {indices.min()}, max {indices.max()}")


def _as_long(a, device) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=torch.int64)
    return torch.as_tensor(np.asarray(a, dtype=np.int64), device=device)


def _top_k_rows(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` columns of each row of ``scores`` [r, n] (n >= k >= 1), -inf meaning "not a candidate".

    Returns (columns int64 [r, k], values [r, k]) ordered by value descending then column ascending; slots whose
    value is -inf get column -1. ``torch.topk`` picks an unspecified member of a tie, so rows where the K-th value
    also occurs outside the returned set are recomputed exactly: every column strictly above the K-th value, then
    the lowest-numbered columns equal to it. Such a row is detected for free by asking topk for K + 1 values: the
    K-th value occurs outside the top K exactly when the (K+1)-th value equals it. The recomputation is O(n) per
    affected row and affects no row when scores are distinct, the usual case for learned embeddings.
    """
    n = scores.shape[1]
    vals, cols = torch.topk(scores, min(k + 1, n), dim=1, largest=True, sorted=True)
    if n > k:
        boundary_tie = torch.isfinite(vals[:, k - 1]) & (vals[:, k] == vals[:, k - 1])
        vals, cols = vals[:, :k], cols[:, :k]
    else:
        boundary_tie = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
    kth = vals[:, -1:]
    tie_rows = boundary_tie.nonzero().squeeze(1)
    if tie_rows.numel():
        sub = scores.index_select(0, tie_rows)
        sub_kth = kth.index_select(0, tie_rows)
        above = sub > sub_kth
        equal = sub == sub_kth
        needed = k - above.sum(1, keepdim=True)
        chosen = above | (equal & (equal.cumsum(1) <= needed))
        # Exactly k columns are chosen per row; nonzero() lists them row-major, so the view is well defined.
        sub_cols = chosen.nonzero()[:, 1].view(-1, k)
        cols[tie_rows] = sub_cols
        vals[tie_rows] = sub.gather(1, sub_cols)
    # Order within the list: column ascending first, then a stable sort by value descending keeps that order
    # among equal values.
    by_col = torch.argsort(cols, dim=1)
    cols, vals = cols.gather(1, by_col), vals.gather(1, by_col)
    by_val = torch.sort(vals, dim=1, descending=True, stable=True).indices
    cols, vals = cols.gather(1, by_val), vals.gather(1, by_val)
    cols = torch.where(torch.isneginf(vals), torch.full_like(cols, -1), cols)
    return cols, vals


def top_k_from_scores(
    score_chunk: Callable[[int, int, torch.Tensor], torch.Tensor],
    n_users: int,
    n_items: int,
    k: int,
    exclude: CSR | None = None,
    candidate_mask=None,
    chunk_users: int = 4096,
    device: torch.device | str = "cpu",
    score_dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine behind :func:`top_k` and the baselines: same exclusion, padding, ties and chunking.

    ``score_chunk(start, stop, candidate_items)`` returns the scores [stop - start, len(candidate_items)] of user
    rows ``start:stop`` against the candidate titles ``candidate_items`` (int64, ascending global title indices).
    The returned tensor may be modified in place. Returns (title indices int64 [n_users, k] with -1 padding,
    scores [n_users, k] in ``score_dtype`` with -inf padding), on ``device``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if chunk_users < 1:
        raise ValueError(f"chunk_users must be >= 1, got {chunk_users}")
    device = torch.device(device)
    if candidate_mask is None:
        candidates = torch.arange(n_items, device=device)
    else:
        if isinstance(candidate_mask, torch.Tensor):
            mask = candidate_mask.to(device)
        else:
            mask = torch.as_tensor(np.asarray(candidate_mask), device=device)
        if mask.dtype != torch.bool or mask.shape != (n_items,):
            raise ValueError(f"candidate_mask must be bool [{n_items}], got {mask.dtype} {tuple(mask.shape)}")
        candidates = mask.nonzero().squeeze(1)
    n_candidates = int(candidates.numel())

    out_items = torch.full((n_users, k), -1, dtype=torch.int64, device=device)
    out_scores = torch.full((n_users, k), float("-inf"), dtype=score_dtype, device=device)
    if n_candidates == 0 or n_users == 0:
        return out_items, out_scores

    if exclude is not None:
        exclude.validate(n_users, n_items, "exclude")
        offsets = np.asarray(exclude.offsets, dtype=np.int64)
        ex_indices = _as_long(exclude.indices, device)
        # Global title index -> position among the candidates, -1 for non-candidates (already out of the matrix).
        local_of = torch.full((n_items,), -1, dtype=torch.int64, device=device)
        local_of[candidates] = torch.arange(n_candidates, device=device)

    k_eff = min(k, n_candidates)
    for start in range(0, n_users, chunk_users):
        stop = min(start + chunk_users, n_users)
        scores = score_chunk(start, stop, candidates)
        if scores.shape != (stop - start, n_candidates):
            raise ValueError(f"score_chunk returned {tuple(scores.shape)}, expected {(stop - start, n_candidates)}")
        if exclude is not None and offsets[stop] > offsets[start]:
            watched = local_of[ex_indices[offsets[start] : offsets[stop]]]
            counts = torch.as_tensor(np.diff(offsets[start : stop + 1]), device=device)
            row_of = torch.repeat_interleave(torch.arange(stop - start, device=device), counts)
            keep = watched >= 0
            scores[row_of[keep], watched[keep]] = float("-inf")
        cols, vals = _top_k_rows(scores, k_eff)
        valid = cols >= 0
        out_items[start:stop, :k_eff] = torch.where(valid, candidates[cols.clamp(min=0)], cols)
        out_scores[start:stop, :k_eff] = vals.to(score_dtype)
    return out_items, out_scores


def top_k(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    k: int,
    exclude: CSR | None = None,
    candidate_mask=None,
    chunk_users: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` titles per user by dot product of the two towers' embeddings.

    Args:
        user_emb: float [n_users, d], one row per user row.
        item_emb: float [n_items, d], one row per title row (cold titles included).
        k: list length (>= 1).
        exclude: titles each user must not be recommended (already watched), as a :class:`CSR` over user rows;
            indices outside the candidate set are ignored.
        candidate_mask: bool [n_items] (numpy or torch); None means every title is a candidate.
        chunk_users: users scored per matrix product; peak extra memory is ``chunk_users x n_candidates`` floats.

    Returns:
        (indices int64 [n_users, k], scores float32 [n_users, k]) on ``user_emb``'s device; scores are dot products
        (logits). See the module docstring for ordering, ties and padding.

    Scores are computed in float32. Non-finite embeddings raise ValueError rather than yield an arbitrary ranking.
    """
    if user_emb.ndim != 2 or item_emb.ndim != 2 or user_emb.shape[1] != item_emb.shape[1]:
        raise ValueError(f"embeddings must be [n_users, d] and [n_items, d], got {tuple(user_emb.shape)} and "
                         f"{tuple(item_emb.shape)}")
    device = user_emb.device
    users = user_emb.detach().to(torch.float32)
    items = item_emb.detach().to(device=device, dtype=torch.float32)
    for name, emb in (("user_emb", users), ("item_emb", items)):
        if not bool(torch.isfinite(emb).all()):
            raise ValueError(f"{name} holds NaN or infinite values")
    candidate_items: dict[str, torch.Tensor] = {}

    def score_chunk(start: int, stop: int, candidates: torch.Tensor) -> torch.Tensor:
        if "t" not in candidate_items:  # the candidate columns, gathered once and transposed for the product
            candidate_items["t"] = items.index_select(0, candidates).T.contiguous()
        return users[start:stop] @ candidate_items["t"]

    with torch.no_grad():
        return top_k_from_scores(score_chunk, users.shape[0], items.shape[0], k, exclude, candidate_mask,
                                 chunk_users, device=device)
