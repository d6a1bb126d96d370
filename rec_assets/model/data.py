"""Model inputs: the numpy contract the Dagster layer fills, and the torch tensors the towers read.

The numpy dataclasses (`ItemFeatures`, `UserData`, `Interactions`) are what an asset builds from DuckDB.
`item_tensors` / `user_tensors` turn them into device tensors once; `ItemTensors.take` / `UserTensors.take`
gather a batch with vectorised indexing, so batch assembly never loops in Python.

ID vocabularies. The model's ID embeddings (item ID, history items, NCF user ID) are indexed by a vocabulary
fixed at training time: the sorted title_ids with `id_known` true, and the sorted training user_ids. Scoring
features come from a different week with a different row order and new (cold) titles, so every lookup goes
through the title_id / user_id, never through a row number. A title outside the vocabulary, or flagged
`id_known` false, gets ID row -1, which the towers turn into a zero embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

NO_ROW = -1  # ID row of a title/user outside the vocabulary (zero embedding) and history padding


@dataclass
class ItemFeatures:
    """One row per title available in the week, cold titles included; the row order is used everywhere."""

    title_ids: np.ndarray  # int64 [n_titles]
    is_tv: np.ndarray  # bool [n_titles]
    categorical_offsets: np.ndarray  # int64 [n_titles + 1] (CSR)
    categorical_indices: np.ndarray  # int64 [nnz], column ids < categorical_width
    categorical_width: int
    synopsis: np.ndarray  # float32 [n_titles, d_syn]
    synopsis_missing: np.ndarray  # bool [n_titles]
    cover_art: np.ndarray  # float32 [n_titles, d_img]
    cover_art_missing: np.ndarray  # bool [n_titles]
    id_known: np.ndarray  # bool [n_titles]: had an event in the training period
    # categorical columns set only by interactions (popularity bins) and those of a title without any (no_views),
    # so that training can present a warm title exactly as a cold one (TrainConfig.id_dropout)
    interaction_columns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    no_views_columns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_titles(self) -> int:
        return len(self.title_ids)

    def validate(self) -> None:
        """Raise ValueError naming the first broken field."""
        n = self.n_titles
        _check(len(sorted_unique(self.title_ids)) == n, "ItemFeatures.title_ids must be unique")
        for name in ("is_tv", "synopsis_missing", "cover_art_missing", "id_known"):
            value = getattr(self, name)
            _check(value.shape == (n,) and value.dtype == np.bool_, f"ItemFeatures.{name} must be bool [{n}]")
        _check_csr(self, "categorical_offsets", "categorical_indices", n, self.categorical_width, "must lie in")
        for name in ("synopsis", "cover_art"):
            value = getattr(self, name)
            _check(value.ndim == 2 and value.shape[0] == n, f"ItemFeatures.{name} must be [{n}, d]")
            _check(bool(np.isfinite(value).all()), f"ItemFeatures.{name} has non-finite values")


@dataclass
class UserData:
    """One row per user: categorical features and the watch history of one window (X or X')."""

    user_ids: np.ndarray  # int64 [n_users]
    feature_codes: np.ndarray  # int64 [n_users, n_fields]; 0 = unknown, codes in 0..cardinality
    feature_cardinalities: list[int]
    history_offsets: np.ndarray  # int64 [n_users + 1] (CSR)
    history_items: np.ndarray  # int64 title rows of the ItemFeatures of the same window, oldest first

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def validate(self, n_titles: int) -> None:
        n = self.n_users
        _check(len(sorted_unique(self.user_ids)) == n, "UserData.user_ids must be unique")
        _check(self.feature_codes.shape == (n, len(self.feature_cardinalities)),
               f"UserData.feature_codes must be [{n}, {len(self.feature_cardinalities)}]")
        if self.feature_codes.size:
            _check(self.feature_codes.min() >= 0, "UserData.feature_codes must be >= 0")
            _check(bool(np.all(self.feature_codes.max(axis=0) <= np.asarray(self.feature_cardinalities))),
                   "UserData.feature_codes exceed feature_cardinalities")
        _check_csr(self, "history_offsets", "history_items", n, n_titles, "must be title rows in")


@dataclass
class Interactions:
    """Positives: label-window watches, as (user row, title row) pairs."""

    user_rows: np.ndarray  # int64
    title_rows: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.user_rows)

    def validate(self, n_users: int, n_titles: int) -> None:
        _check(self.user_rows.shape == self.title_rows.shape, "Interactions columns must have equal length")
        if len(self):
            _check(0 <= self.user_rows.min() and self.user_rows.max() < n_users, "Interactions.user_rows out of range")
            _check(0 <= self.title_rows.min() and self.title_rows.max() < n_titles,
                   "Interactions.title_rows out of range")


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sort and neighbour compare: np.unique in numpy 2.4 took ~100x longer on 13M int64 keys."""
    values = np.sort(np.asarray(values).ravel())
    if len(values) == 0:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _check_csr(owner: object, offsets_name: str, values_name: str, n_rows: int, bound: int, values_are: str) -> None:
    """The CSR fields `offsets_name` / `values_name` of `owner`: n_rows + 1 offsets from 0, not decreasing, ending at
    the number of values, and every value in [0, bound)."""
    offsets, values, cls = getattr(owner, offsets_name), getattr(owner, values_name), type(owner).__name__
    _check(offsets.shape == (n_rows + 1,), f"{cls}.{offsets_name} must be [{n_rows + 1}]")
    _check(offsets[0] == 0 and np.all(np.diff(offsets) >= 0), f"{cls}.{offsets_name} must start at 0 and not decrease")
    _check(offsets[-1] == len(values), f"{cls}.{offsets_name}[-1] must equal len({values_name})")
    if len(values):
        _check(values.min() >= 0 and values.max() < bound, f"{cls}.{values_name} {values_are} [0, {bound})")


# --- ID vocabularies -------------------------------------------------------------------------------------------


def title_vocabulary(items: ItemFeatures) -> np.ndarray:
    """Sorted title_ids that get a trained ID embedding: those with an event in the training period."""
    return np.sort(items.title_ids[items.id_known]).astype(np.int64)


def user_vocabulary(users: UserData) -> np.ndarray:
    return np.sort(users.user_ids).astype(np.int64)


def lookup(vocabulary: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each id in a sorted vocabulary, NO_ROW where absent."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(vocabulary) == 0:
        return np.full(ids.shape, NO_ROW, dtype=np.int64)
    rows = np.searchsorted(vocabulary, ids)
    clipped = np.minimum(rows, len(vocabulary) - 1)
    return np.where(vocabulary[clipped] == ids, clipped, NO_ROW).astype(np.int64)


# --- tensors the towers read ------------------------------------------------------------------------------------


@dataclass
class ItemTensors:
    """Item tower input for n titles (all titles of a week, or one batch of them)."""

    id_rows: torch.Tensor  # int64 [n]; NO_ROW = zero ID embedding
    categorical_offsets: torch.Tensor  # int64 [n + 1]
    categorical_indices: torch.Tensor  # int64 [nnz]
    synopsis: torch.Tensor  # float32 [n, d_syn]
    synopsis_present: torch.Tensor  # bool [n]
    cover_art: torch.Tensor  # float32 [n, d_img]
    cover_art_present: torch.Tensor  # bool [n]

    def __len__(self) -> int:
        return len(self.id_rows)

    def take(self, rows: torch.Tensor) -> "ItemTensors":
        offsets, indices = take_csr(self.categorical_offsets, self.categorical_indices, rows)
        return ItemTensors(self.id_rows[rows], offsets, indices, self.synopsis[rows], self.synopsis_present[rows],
                           self.cover_art[rows], self.cover_art_present[rows])

    def to(self, device: torch.device | str) -> "ItemTensors":
        return ItemTensors(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


@dataclass
class UserTensors:
    """User tower input for n users: the padded recent history and the categorical features."""

    history: torch.Tensor  # int64 [n, L] title vocabulary rows, most recent first, NO_ROW = padding
    features: torch.Tensor  # int64 [n, n_fields]
    id_rows: torch.Tensor  # int64 [n] user vocabulary rows (NCF variant), NO_ROW = unknown user

    def __len__(self) -> int:
        return len(self.id_rows)

    def take(self, rows: torch.Tensor) -> "UserTensors":
        return UserTensors(self.history[rows], self.features[rows], self.id_rows[rows])

    def to(self, device: torch.device | str) -> "UserTensors":
        return UserTensors(self.history.to(device), self.features.to(device), self.id_rows.to(device))


def take_csr(offsets: torch.Tensor, indices: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The CSR sub-matrix of `rows` (in that order), without a Python loop."""
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    new_offsets = torch.zeros(len(rows) + 1, dtype=torch.int64, device=offsets.device)
    torch.cumsum(lengths, 0, out=new_offsets[1:])
    total = int(new_offsets[-1])
    # position k of the output belongs to output row r: source index = starts[r] + (k - new_offsets[r])
    owner = torch.repeat_interleave(torch.arange(len(rows), device=offsets.device), lengths, output_size=total)
    source = starts[owner] + torch.arange(total, device=offsets.device) - new_offsets[owner]
    return new_offsets, indices[source]


def item_tensors(items: ItemFeatures, title_vocab: np.ndarray, device: torch.device | str = "cpu") -> ItemTensors:
    """All titles of `items` as tower input; the ID row is NO_ROW unless the title is known to the model
    (in `title_vocab`) and flagged `id_known` in this week's features."""
    items.validate()
    id_rows = np.where(items.id_known, lookup(title_vocab, items.title_ids), NO_ROW)
    # a missing modality is zeroed here as well as masked in the tower, so stray values never leak in
    synopsis = np.where(items.synopsis_missing[:, None], 0.0, items.synopsis).astype(np.float32)
    cover_art = np.where(items.cover_art_missing[:, None], 0.0, items.cover_art).astype(np.float32)
    return ItemTensors(
        id_rows=torch.from_numpy(id_rows.astype(np.int64)),
        categorical_offsets=torch.from_numpy(items.categorical_offsets.astype(np.int64)),
        categorical_indices=torch.from_numpy(items.categorical_indices.astype(np.int64)),
        synopsis=torch.from_numpy(synopsis),
        synopsis_present=torch.from_numpy(~items.synopsis_missing),
        cover_art=torch.from_numpy(cover_art),
        cover_art_present=torch.from_numpy(~items.cover_art_missing),
    ).to(device)


def padded_history(offsets: np.ndarray, items: np.ndarray, length: int) -> np.ndarray:
    """[n_users, length] of the last `length` entries of each CSR row, most recent first, NO_ROW padded."""
    n_users = len(offsets) - 1
    counts = np.minimum(np.diff(offsets), length)
    position = np.arange(length)[None, :]
    source = offsets[1:, None] - 1 - position  # the newest entry sits at the end of each row
    valid = position < counts[:, None]
    if len(items) == 0:
        return np.full((n_users, length), NO_ROW, dtype=np.int64)
    return np.where(valid, items[np.clip(source, 0, len(items) - 1)], NO_ROW).astype(np.int64)


def user_tensors(users: UserData, items: ItemFeatures, title_vocab: np.ndarray, user_vocab: np.ndarray,
                 history_len: int, rows: np.ndarray | None = None, device: torch.device | str = "cpu",
                 validate: bool = True) -> UserTensors:
    """Tower input for `users` (or the subset `rows`), their history rows read against `items`.

    History titles outside the title vocabulary have no trained history embedding; they are dropped before the
    last `history_len` are kept, so they neither count as padding nor push known titles out of the window.
    `validate=False` skips the O(history) check, for callers that build many chunks of already-checked data."""
    if validate:
        users.validate(items.n_titles)
    offsets = users.history_offsets
    if rows is not None:
        rows = np.asarray(rows, dtype=np.int64)
        lengths = offsets[rows + 1] - offsets[rows]
        owner = np.repeat(np.arange(len(rows)), lengths)
        new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        history_items = users.history_items[offsets[rows][owner] + np.arange(len(owner)) - new_offsets[owner]]
        offsets, features, user_ids = new_offsets, users.feature_codes[rows], users.user_ids[rows]
    else:
        history_items, features, user_ids = users.history_items, users.feature_codes, users.user_ids
    vocab_rows = lookup(title_vocab, items.title_ids)[history_items]
    keep = vocab_rows != NO_ROW
    kept_before = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
    history = padded_history(kept_before[offsets], vocab_rows[keep], history_len)
    return UserTensors(
        history=torch.from_numpy(history),
        features=torch.from_numpy(np.ascontiguousarray(features, dtype=np.int64)),
        id_rows=torch.from_numpy(lookup(user_vocab, user_ids)),
    ).to(device)


# --- negative sampling -----------------------------------------------------------------------------------------


def watched_keys(users: UserData, positives: Interactions, n_titles: int) -> np.ndarray:
    """Sorted unique keys user_row * n_titles + title_row of everything a user watched (history ∪ positives)."""
    history_users = np.repeat(np.arange(users.n_users, dtype=np.int64), np.diff(users.history_offsets))
    keys = np.concatenate([history_users * n_titles + users.history_items,
                           positives.user_rows.astype(np.int64) * n_titles + positives.title_rows])
    return sorted_unique(keys)


def contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Membership in a sorted key array (binary search; no re-sort as np.isin would do)."""
    if len(sorted_keys) == 0:
        return np.zeros(keys.shape, dtype=bool)
    position = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[position] == keys


def sample_negatives(rng: np.random.Generator, user_rows: np.ndarray, rate: int, candidates: np.ndarray,
                     watched: np.ndarray, n_titles: int, max_rounds: int = 64) -> np.ndarray:
    """[len(user_rows), rate] title rows drawn uniformly from `candidates` minus what each user watched.

    Draw everything at once, then redraw only the collisions; users who watched nearly every candidate
    (rare) fall back to an exact draw from their complement after `max_rounds`.
    Raises ValueError when a user has watched every candidate."""
    user_rows = np.asarray(user_rows, dtype=np.int64)
    candidates = np.asarray(candidates, dtype=np.int64)
    if len(candidates) == 0:
        raise ValueError("no candidate titles for negative sampling")
    drawn = candidates[rng.integers(0, len(candidates), size=(len(user_rows), rate))]
    bad = np.flatnonzero(contains(watched, user_rows[:, None] * n_titles + drawn))  # flat slots, user = slot // rate
    for _ in range(max_rounds):
        if len(bad) == 0:
            return drawn
        redraw = candidates[rng.integers(0, len(candidates), size=len(bad))]
        drawn.flat[bad] = redraw
        bad = bad[contains(watched, user_rows[bad // rate] * n_titles + redraw)]
    for user in sorted_unique(user_rows[bad // rate]):
        user_watched = watched[(watched >= user * n_titles) & (watched < (user + 1) * n_titles)] - user * n_titles
        allowed = np.setdiff1d(candidates, user_watched)
        if len(allowed) == 0:
            raise ValueError(f"user row {user} has watched every candidate title; no negative can be drawn")
        slots = bad[user_rows[bad // rate] == user]
        drawn.flat[slots] = allowed[rng.integers(0, len(allowed), size=len(slots))]
    return drawn


# --- synthetic data (tests, benchmarks) --------------------------------------------------------------------------


@dataclass
class SyntheticProblem:
    """A latent-factor world in which the metadata carries the title factors, so metadata alone can rank titles.

    Training: history `train_users` (X) -> positives `train_positives` (Y), titles `train_items` where the cold
    titles have id_known false and no event. Scoring: history `score_users` (X' = X then Y), features
    `score_items` (same rows), and `score_positives` (Y'): one watch per user among the cold titles plus
    `n_warm_label` among the warm ones."""

    train_items: ItemFeatures
    train_users: UserData
    train_positives: Interactions
    score_items: ItemFeatures
    score_users: UserData
    score_positives: Interactions
    cold_rows: np.ndarray
    user_factors: np.ndarray
    title_factors: np.ndarray
    affinity: np.ndarray = field(repr=False)


def make_synthetic(n_users: int = 300, n_titles: int = 200, n_cold: int = 40, n_factors: int = 4,
                   history_len: int = 20, n_positives: int = 5, n_warm_label: int = 3, synopsis_dim: int = 16,
                   cover_art_dim: int = 512, categorical_noise_width: int = 20, missing_share: float = 0.1,
                   empty_history_users: int = 5, sharpness: float = 2.0, seed: int = 0) -> SyntheticProblem:
    """Users and titles get factors ~ N(0, 1); a user watches titles drawn without replacement with weight
    exp(sharpness * u . v). Metadata: categorical column 2k (2k+1) set when factor k > 0.3 (< -0.3) plus
    random noise columns; synopsis and cover art are noisy linear images of the factors; a share of synopses
    and covers is missing. The last `n_cold` title rows are cold: no event before the scoring week."""
    rng = np.random.default_rng(seed)
    user_factors = rng.standard_normal((n_users, n_factors)).astype(np.float32)
    title_factors = rng.standard_normal((n_titles, n_factors)).astype(np.float32)
    affinity = sharpness * user_factors @ title_factors.T
    cold_rows = np.arange(n_titles - n_cold, n_titles)
    warm = np.ones(n_titles, dtype=bool)
    warm[cold_rows] = False

    # Gumbel top-k = sampling without replacement proportional to exp(affinity)
    perturbed = affinity + rng.gumbel(size=affinity.shape)
    warm_order = np.argsort(-np.where(warm, perturbed, -np.inf), axis=1)
    history_counts = np.full(n_users, history_len)
    history_counts[:empty_history_users] = 0
    history_users, history_titles, positive_users, positive_titles = [], [], [], []
    label_users, label_titles = [], []
    for user in range(n_users):
        n_hist = history_counts[user]
        picked = warm_order[user, : n_hist + n_positives + n_warm_label]
        history = rng.permutation(picked[:n_hist])  # time order unrelated to affinity rank
        history_users.append(np.full(n_hist, user))
        history_titles.append(history)
        positive_users.append(np.full(n_positives, user))
        positive_titles.append(picked[n_hist: n_hist + n_positives])
        cold_pick = cold_rows[np.argmax(perturbed[user, cold_rows])]
        label_users.append(np.full(n_warm_label + 1, user))
        label_titles.append(np.concatenate([picked[n_hist + n_positives:], [cold_pick]]))

    categorical_rows = []
    for t in range(n_titles):
        columns = [2 * k for k in range(n_factors) if title_factors[t, k] > 0.3]
        columns += [2 * k + 1 for k in range(n_factors) if title_factors[t, k] < -0.3]
        columns += list(2 * n_factors + rng.choice(categorical_noise_width, size=2, replace=False))
        categorical_rows.append(np.sort(np.asarray(columns, dtype=np.int64)))
    categorical_offsets = np.concatenate([[0], np.cumsum([len(r) for r in categorical_rows])]).astype(np.int64)
    synopsis = title_factors @ rng.standard_normal((n_factors, synopsis_dim)) + \
        0.3 * rng.standard_normal((n_titles, synopsis_dim))
    cover_art = title_factors @ rng.standard_normal((n_factors, cover_art_dim)) * 0.5 + \
        rng.standard_normal((n_titles, cover_art_dim))
    synopsis_missing = rng.random(n_titles) < missing_share
    cover_art_missing = rng.random(n_titles) < missing_share

    def items_with(id_known: np.ndarray) -> ItemFeatures:
        return ItemFeatures(
            title_ids=np.arange(1000, 1000 + n_titles, dtype=np.int64),
            is_tv=(np.arange(n_titles) % 3 == 0),
            categorical_offsets=categorical_offsets,
            categorical_indices=np.concatenate(categorical_rows),
            categorical_width=2 * n_factors + categorical_noise_width,
            synopsis=np.where(synopsis_missing[:, None], 0.0, synopsis).astype(np.float32),
            synopsis_missing=synopsis_missing,
            cover_art=np.where(cover_art_missing[:, None], 0.0, cover_art).astype(np.float32),
            cover_art_missing=cover_art_missing,
            id_known=id_known,
        )

    def users_with(per_user_titles: list[np.ndarray]) -> UserData:
        lengths = [len(t) for t in per_user_titles]
        return UserData(
            user_ids=np.arange(50_000, 50_000 + n_users, dtype=np.int64),
            feature_codes=rng.integers(0, 6, size=(n_users, 1)).astype(np.int64),
            feature_cardinalities=[5],
            history_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            history_items=np.concatenate(per_user_titles).astype(np.int64),
        )

    train_users = users_with(history_titles)
    score_users = users_with([np.concatenate([h, p]) for h, p in zip(history_titles, positive_titles)])
    score_users.feature_codes = train_users.feature_codes
    items = items_with(warm.copy())
    return SyntheticProblem(
        train_items=items,
        train_users=train_users,
        train_positives=Interactions(np.concatenate(positive_users).astype(np.int64),
                                     np.concatenate(positive_titles).astype(np.int64)),
        score_items=items_with(warm.copy()),
        score_users=score_users,
        score_positives=Interactions(np.concatenate(label_users).astype(np.int64),
                                     np.concatenate(label_titles).astype(np.int64)),
        cold_rows=cold_rows,
        user_factors=user_factors,
        title_factors=title_factors,
        affinity=affinity,
    )
