"""Training examples and batches: every user's history as one device index, next-watch candidates and their
per-user draws, the batch of positives and candidates a loss reads, and ID / modality dropout (DropoutNet).

An example is (owner user row, history prefix length, position left out, title row); the user tower reads a prefix
of the owner's kept watches, so a batch's user inputs are cut on the device without a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rec_assets.model.data import NO_ROW, ItemFeatures, ItemTensors, UserData, UserTensors, lookup


# --- examples ----------------------------------------------------------------------------------------------------


@dataclass
class HistoryIndex:
    """Every user's X as title-vocabulary rows (CSR, oldest first) on the device, cut at any prefix per batch.
    Titles outside the vocabulary are dropped first, as ``data.user_tensors`` drops them."""

    offsets: torch.Tensor  # int64 [n_users + 1]
    vocab_rows: torch.Tensor  # int64 [nnz + 1]: the kept watches, then one NO_ROW pad
    features: torch.Tensor
    id_rows: torch.Tensor
    length: int  # history_len
    title_rows: np.ndarray  # int64 [nnz]: the item row of each kept watch (next-watch positives)
    lengths: np.ndarray  # int64 [n_users]: kept watches per user

    def users(self, owners: torch.Tensor, cuts: torch.Tensor, skips: torch.Tensor) -> UserTensors:
        """User-tower input of each owner reading only its first `cuts` kept watches (the last `length` of them),
        the one at position `skips` left out (-1: none)."""
        position = torch.arange(self.length, device=owners.device)
        back = cuts.unsqueeze(1) - 1 - position  # position in the user's row, newest first
        back = back - ((skips >= 0).unsqueeze(1) & (back <= skips.unsqueeze(1))).long()
        valid = back >= 0
        history = torch.where(valid, self.vocab_rows[(self.offsets[owners].unsqueeze(1) + back).clamp(min=0)], NO_ROW)
        return UserTensors(history, self.features[owners], self.id_rows[owners])


def history_index(users: UserData, items: ItemFeatures, title_vocab: np.ndarray, user_vocab: np.ndarray,
                  history_len: int, device: torch.device) -> HistoryIndex:
    users.validate(items.n_titles)
    vocab = lookup(title_vocab, items.title_ids)[users.history_items]
    keep = vocab != NO_ROW
    kept_before = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
    offsets = kept_before[users.history_offsets]
    return HistoryIndex(
        offsets=torch.from_numpy(offsets).to(device),
        vocab_rows=torch.from_numpy(np.concatenate([vocab[keep], [NO_ROW]]).astype(np.int64)).to(device),
        features=torch.from_numpy(np.ascontiguousarray(users.feature_codes, dtype=np.int64)).to(device),
        id_rows=torch.from_numpy(lookup(user_vocab, users.user_ids)).to(device),
        length=history_len, title_rows=users.history_items[keep].astype(np.int64), lengths=np.diff(offsets))


@dataclass
class Examples:
    """Per example: owner user row, history prefix length, position left out of it (-1: none), title row."""

    owners: np.ndarray
    cuts: np.ndarray
    skips: np.ndarray
    titles: np.ndarray

    def __len__(self) -> int:
        return len(self.owners)

    def take(self, rows: np.ndarray) -> "Examples":
        return Examples(self.owners[rows], self.cuts[rows], self.skips[rows], self.titles[rows])

    @staticmethod
    def concat(parts: list["Examples"]) -> "Examples":
        return Examples(*(np.concatenate([getattr(p, f) for p in parts]).astype(np.int64)
                          for f in ("owners", "cuts", "skips", "titles")))


def history_candidates(index: HistoryIndex, user_rows: np.ndarray, pool: np.ndarray, n_titles: int,
                       view: str, recent: int = 0) -> Examples:
    """Every kept watch of X of `user_rows` but their first as an example, read against the watches before it
    (view "next_watch") or every other watch of X ("leave_one_out"); titles outside the pool are left out.
    `recent` > 0: only each user's last `recent` watches are examples (the history they are read against stays)."""
    starts = index.offsets[:-1].cpu().numpy()
    lengths = index.lengths[user_rows]
    owners = np.repeat(user_rows, lengths)
    cuts = np.arange(len(owners)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    titles = index.title_rows[starts[owners] + cuts] if len(owners) else np.zeros(0, np.int64)
    in_pool = np.zeros(n_titles, dtype=bool)
    in_pool[pool] = True
    keep = (cuts >= 1) & in_pool[titles]
    if recent > 0:
        keep &= cuts >= index.lengths[owners] - recent
    owners, cuts, titles = owners[keep], cuts[keep], titles[keep]
    if view == "next_watch":
        return Examples(owners, cuts, np.full(len(owners), -1), titles)
    return Examples(owners, index.lengths[owners], cuts, titles)


def draw_per_user(rng: np.random.Generator, candidates: Examples, per_user: int) -> Examples:
    """At most `per_user` candidates of each owner, uniformly without replacement (all with -1)."""
    if per_user < 0 or len(candidates) == 0:
        return candidates
    order = np.lexsort((rng.random(len(candidates)), candidates.owners))
    owners = candidates.owners[order]
    first = np.searchsorted(owners, owners, side="left")
    return candidates.take(np.sort(order[np.arange(len(order)) - first < per_user]))


def per_user_cap_within(owners: np.ndarray, budget: int) -> int:
    """The largest per-user cap c with sum over users of min(watches, c) <= ``budget`` (-1: every candidate fits),
    so a bounded epoch keeps every watch of the light users and equal shares of the heavy ones; at least 1."""
    counts = np.sort(np.bincount(owners)[np.bincount(owners) > 0]) if len(owners) else np.zeros(0, np.int64)
    if budget <= 0 or counts.sum() <= budget:
        return -1
    # taken(c) = sum(min(counts, c)) grows with c; search the smallest count-level where it passes the budget
    below = np.concatenate([[0], np.cumsum(counts)])  # below[i]: sum of the i smallest counts
    levels = np.arange(1, counts[-1] + 1)
    n_under = np.searchsorted(counts, levels, side="left")  # users with fewer than c candidates
    taken = below[n_under] + levels * (len(counts) - n_under)
    return max(int(levels[np.searchsorted(taken, budget, side="right") - 1]) if taken[0] <= budget else 1, 1)


def log_expected_draws(frequency: np.ndarray, batch_size: int, mixed: int, pool_size: int) -> np.ndarray:
    """log q per title: the expected number of times a batch draws it as a candidate, `batch_size` positives
    drawn with the training frequency plus `mixed` uniform draws from the pool (Yi et al. 2019, Yang et al. 2020)."""
    return np.log(batch_size * frequency + mixed / max(pool_size, 1) + 1e-12)


# --- batches -----------------------------------------------------------------------------------------------------


@dataclass
class Batch:
    users: UserTensors  # [P] the rows this process scores
    items: ItemTensors  # [U] distinct candidate titles
    title_rows: torch.Tensor  # [U] their item rows
    item_index: torch.Tensor  # bce: [P, 1 + rate], column 0 the positive; softmax: [P] position of the positive
    log_q: torch.Tensor | None  # softmax: [U] log expected draws of each candidate (None: no correction)
    n_examples: int  # terms of the loss sum: scored pairs (bce) or rows (softmax)


def assemble_batch(users: UserTensors, items: ItemTensors, title_rows: torch.Tensor, negatives: torch.Tensor,
                   shared: torch.Tensor | None = None, log_q: torch.Tensor | None = None) -> Batch:
    """bce (`shared` None): each positive title with its `negatives` [P, rate]. softmax: every row against the
    batch's candidates, `negatives` being all of the batch's positive titles and `shared` its uniform titles."""
    if shared is None:
        candidates = torch.cat([title_rows.unsqueeze(1), negatives], dim=1)
        distinct, item_index = torch.unique(candidates, return_inverse=True)
        return Batch(users, items.take(distinct), distinct, item_index, None, candidates.numel())
    distinct, inverse = torch.unique(torch.cat([title_rows, negatives, shared]), return_inverse=True)
    return Batch(users, items.take(distinct), distinct, inverse[: len(title_rows)],
                 None if log_q is None else log_q[distinct], len(title_rows))



# --- ID and modality dropout -------------------------------------------------------------------------------------


@dataclass
class ColdColumns:
    """Categorical columns that interactions set (popularity bins) and those a title without any has (no_views)."""

    interaction: torch.Tensor
    no_views: torch.Tensor


def drop_item_inputs(items: ItemTensors, draws: np.ndarray, types: list[str], id_rate: float, modality_rate: float,
                     cold: ColdColumns) -> ItemTensors:
    """The batch's titles with metadata types and IDs dropped by the uniform `draws` [4, n] (rows: categorical,
    synopsis, cover art, ID). A type goes where its draw is below `modality_rate` (a title that would lose every
    type it has keeps them all); below `id_rate`, a title that keeps a metadata type is presented as a cold one
    (DropoutNet): ID zeroed, its popularity bins replaced by the no_views columns. Only the tower's `types`."""
    n, device = len(items), items.id_rows.device
    counts = items.categorical_offsets[1:] - items.categorical_offsets[:-1]
    below = torch.from_numpy(np.ascontiguousarray(draws)).to(device)
    names = ("categorical", "synopsis", "cover_art")
    present = {t: m for t, m in zip(names, (counts > 0, items.synopsis_present, items.cover_art_present))
               if t in types}
    kept = dict(present)
    if modality_rate > 0 and present:
        dropped = {t: m & (below[names.index(t)] < modality_rate) for t, m in present.items()}
        left = torch.stack([m & ~dropped[t] for t, m in present.items()]).any(0)
        kept = {t: m & (~dropped[t] | ~left) for t, m in present.items()}
    as_cold = torch.zeros(n, dtype=torch.bool, device=device)
    if id_rate > 0 and kept:
        as_cold = (below[3] < id_rate) & torch.stack(list(kept.values())).any(0)
    id_rows = torch.where(as_cold, NO_ROW, items.id_rows) if "id" in types else items.id_rows
    offsets, indices = items.categorical_offsets, items.categorical_indices
    if "categorical" in kept and (modality_rate > 0 or bool(as_cold.any())):
        row_of = torch.repeat_interleave(torch.arange(n, device=device), counts)
        keep = kept["categorical"][row_of] & ~(as_cold[row_of] & torch.isin(indices, cold.interaction))
        added = torch.nonzero(as_cold & kept["categorical"]).flatten().repeat_interleave(len(cold.no_views))
        rows = torch.cat([row_of[keep], added])
        indices = torch.cat([indices[keep], cold.no_views.repeat(len(added) // max(len(cold.no_views), 1))])
        rows, order = torch.sort(rows, stable=True)
        indices = indices[order]
        offsets = torch.cat([offsets[:1], torch.cumsum(torch.bincount(rows, minlength=n), 0)])
    return ItemTensors(id_rows, offsets, indices, items.synopsis, kept.get("synopsis", items.synopsis_present),
                       items.cover_art, kept.get("cover_art", items.cover_art_present))
