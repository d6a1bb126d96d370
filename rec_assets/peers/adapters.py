"""Peer recommenders (implicit ALS / BPR, LightFM, a retrained two-tower variant) behind one small protocol.

An adapter (:func:`adapter`) has ``fit(training, config) -> FittedPeer``; a fitted peer has ``embed(items, users) ->
PeerScores``: a user matrix, an item matrix and the ``scorable`` titles. Every peer is a dot-product model, so it is
ranked and scored by the two-tower evaluation code (``peers.evaluate``). ALS and BPR cannot score a title without a
training interaction (``scores_cold`` false). Pure code: no dagster import; implicit and lightfm are imported lazily
(an optional extra, ``.[peers]``). The protocol in full: docs/design.md, "Peers".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
import torch

from rec_assets.model.inputs import WeekData
from rec_assets.model.data import Interactions, ItemFeatures, UserData

__all__ = [
    "ADAPTERS",
    "ALSConfig",
    "BPRConfig",
    "FittedPeer",
    "LightFMConfig",
    "PeerAdapter",
    "PeerScores",
    "TrainingSet",
    "TwoTowerConfig",
    "adapter",
    "config_dict",
    "interaction_matrix",
    "training_set",
]


# --- data --------------------------------------------------------------------------------------------------------


@dataclass
class TrainingSet:
    """What a system may learn from. Title rows follow ``items``; user rows follow ``users``."""

    items: ItemFeatures  # training-phase features; id_known false for titles outside ``trainable``
    users: UserData  # history X (the two-tower's user-tower input when training)
    positives: Interactions  # labels Y (the two-tower's positives)
    matrix: sp.csr_matrix  # float32 [n_users, n_titles]: watch counts over X ∪ Y (implicit feedback)
    trainable: np.ndarray  # bool [n_titles]: titles with a training interaction that a model may learn

    def __post_init__(self) -> None:
        n_users, n_titles = self.users.n_users, self.items.n_titles
        if self.matrix.shape != (n_users, n_titles):
            raise ValueError(f"matrix is {self.matrix.shape}, expected {(n_users, n_titles)}")
        if self.trainable.shape != (n_titles,) or self.trainable.dtype != np.bool_:
            raise ValueError(f"trainable must be bool [{n_titles}]")
        touched = np.zeros(n_titles, dtype=bool)
        touched[self.matrix.indices] = True
        if np.any(touched & ~self.trainable):
            raise ValueError("the matrix has interactions on titles outside `trainable`")


def interaction_matrix(users: UserData, positives: Interactions, n_titles: int) -> sp.csr_matrix:
    """Watch counts of history (every event) plus labels (distinct pairs), users x titles, float32."""
    hist_users = np.repeat(np.arange(users.n_users, dtype=np.int64), np.diff(users.history_offsets))
    rows = np.concatenate([hist_users, positives.user_rows])
    cols = np.concatenate([users.history_items, positives.title_rows])
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(users.n_users, n_titles))
    matrix.sum_duplicates()
    return matrix


def training_set(train: WeekData) -> TrainingSet:
    """The training period of a week (X ∪ Y of the ``"train"`` phase), as the two-tower variants train on it."""
    matrix = interaction_matrix(train.users, train.labels, train.items.n_titles)
    touched = np.zeros(train.items.n_titles, dtype=bool)
    touched[matrix.indices] = True
    trainable = train.items.id_known.astype(bool) & touched
    return TrainingSet(items=replace(train.items, id_known=trainable), users=train.users, positives=train.labels,
                       matrix=matrix, trainable=trainable)


@dataclass
class PeerScores:
    """score(u, i) = user_embeddings[u] . item_embeddings[i]; only ``scorable`` titles may be ranked."""

    user_embeddings: np.ndarray  # float32 [n_users of the scoring UserData, d]
    item_embeddings: np.ndarray  # float32 [n_titles of the scoring ItemFeatures, d]
    scorable: np.ndarray  # bool [n_titles]


class FittedPeer(Protocol):
    name: str
    config: Any

    def embed(self, items: ItemFeatures, users: UserData) -> PeerScores: ...


class PeerAdapter(Protocol):
    name: str
    config_type: type
    scores_cold: bool  # whether titles without a training interaction can be scored

    def fit(self, training: TrainingSet, config: Any) -> FittedPeer: ...


def _user_positions(train_user_ids: np.ndarray, user_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each scoring user among the training users, and whether it was there."""
    pos = np.minimum(np.searchsorted(train_user_ids, user_ids), max(len(train_user_ids) - 1, 0))
    known = (train_user_ids[pos] == user_ids) if len(train_user_ids) else np.zeros(len(user_ids), bool)
    return pos, known


def _title_positions(train_title_ids: np.ndarray, title_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _user_positions(train_title_ids, title_ids)


# --- implicit: ALS and BPR -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ALSConfig:
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 10.0  # confidence = 1 + alpha * watch count
    iterations: int = 15
    seed: int = 0
    num_threads: int = 2


@dataclass(frozen=True)
class BPRConfig:
    factors: int = 64
    learning_rate: float = 0.05
    regularization: float = 0.01
    iterations: int = 100
    seed: int = 0
    num_threads: int = 1  # Hogwild SGD: one thread keeps a fit reproducible


@dataclass
class FittedFactors:
    """Title and user vectors of a matrix-factorisation peer, keyed by the training title and user ids."""

    name: str
    config: Any
    title_ids: np.ndarray  # int64: training title ids, one row of item_factors each
    item_factors: np.ndarray  # float32 [n_trained_titles, d]
    user_ids: np.ndarray
    user_factors: np.ndarray  # float32 [n_training_users, d]

    def embed(self, items: ItemFeatures, users: UserData) -> PeerScores:
        d = self.item_factors.shape[1]
        t_pos, t_known = _title_positions(self.title_ids, items.title_ids)
        item_emb = np.zeros((items.n_titles, d), dtype=np.float32)
        item_emb[t_known] = self.item_factors[t_pos[t_known]]
        u_pos, u_known = _user_positions(self.user_ids, users.user_ids)
        user_emb = np.zeros((users.n_users, d), dtype=np.float32)
        user_emb[u_known] = self.user_factors[u_pos[u_known]]
        return PeerScores(user_emb, item_emb, t_known)


def _implicit_fit(name: str, model, training: TrainingSet, config, binary: bool) -> FittedFactors:
    from threadpoolctl import threadpool_limits

    columns = np.flatnonzero(training.trainable)
    matrix = training.matrix[:, columns].tocsr().astype(np.float32)
    if binary:
        matrix.data[:] = 1.0
    with threadpool_limits(1, "blas"):  # implicit's advice: its own threads, single-threaded BLAS
        model.fit(matrix, show_progress=False)
    user_factors, item_factors = model.user_factors, model.item_factors
    if hasattr(user_factors, "to_numpy"):  # a GPU build returns device matrices
        user_factors, item_factors = user_factors.to_numpy(), item_factors.to_numpy()
    return FittedFactors(name, config, training.items.title_ids[columns],
                         np.ascontiguousarray(item_factors, dtype=np.float32), training.users.user_ids.copy(),
                         np.ascontiguousarray(user_factors, dtype=np.float32))


class ALSAdapter:
    """implicit's AlternatingLeastSquares on watch counts of X ∪ Y (confidence 1 + alpha * count). Warm only."""

    name = "als"
    config_type = ALSConfig
    scores_cold = False

    def fit(self, training: TrainingSet, config: ALSConfig = ALSConfig()) -> FittedFactors:
        from threadpoolctl import threadpool_limits
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(factors=config.factors, regularization=config.regularization,
                                            alpha=config.alpha, iterations=config.iterations,
                                            random_state=config.seed, num_threads=config.num_threads)
        return _implicit_fit(self.name, model, training, config, binary=False)


class BPRAdapter:
    """implicit's BayesianPersonalizedRanking on binary watches of X ∪ Y (item bias in the last factor). Warm only."""

    name = "bpr"
    config_type = BPRConfig
    scores_cold = False

    def fit(self, training: TrainingSet, config: BPRConfig = BPRConfig()) -> FittedFactors:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        model = BayesianPersonalizedRanking(factors=config.factors, learning_rate=config.learning_rate,
                                            regularization=config.regularization, iterations=config.iterations,
                                            random_state=config.seed, num_threads=config.num_threads)
        return _implicit_fit(self.name, model, training, config, binary=True)


# --- LightFM -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LightFMConfig:
    no_components: int = 32
    learning_rate: float = 0.05
    epochs: int = 20
    loss: str = "warp"
    item_alpha: float = 1e-6
    user_alpha: float = 1e-6
    max_sampled: int = 10
    item_identity: bool = True  # an identity feature per trainable title (cold / held-out titles never have one)
    user_identity: bool = True
    categorical_weight: float = 1.0  # the multi-hot block of a title sums to this
    synopsis_weight: float = 1.0  # L2 norm of the synopsis block (0 drops it; missing synopses are zero)
    seed: int = 0
    num_threads: int = 1  # Hogwild SGD: one thread keeps a fit reproducible


def lightfm_item_features(items: ItemFeatures, identity_title_ids: np.ndarray, config: LightFMConfig) -> sp.csr_matrix:
    """[n_titles, n_identity + categorical_width + d_synopsis]: identity | categorical multi-hot | synopsis.

    ``identity_title_ids`` (sorted) fixes the identity columns, so the same layout serves training (trainable titles)
    and scoring (every title of the scoring phase; titles outside it get no identity bit).
    """
    n = items.n_titles
    blocks = []
    n_identity = len(identity_title_ids) if config.item_identity else 0
    if n_identity:
        pos, known = _title_positions(identity_title_ids, items.title_ids)
        rows = np.flatnonzero(known)
        blocks.append(sp.csr_matrix((np.ones(len(rows), np.float32), (rows, pos[known])), shape=(n, n_identity)))
    else:
        blocks.append(sp.csr_matrix((n, 0), dtype=np.float32))
    nnz = np.diff(items.categorical_offsets)
    values = np.repeat(config.categorical_weight / np.maximum(nnz, 1), nnz).astype(np.float32)
    blocks.append(sp.csr_matrix((values, items.categorical_indices, items.categorical_offsets),
                                shape=(n, items.categorical_width)))
    synopsis = np.asarray(items.synopsis, dtype=np.float32)
    norms = np.linalg.norm(synopsis, axis=1, keepdims=True)
    synopsis = np.where(norms > 0, synopsis / np.maximum(norms, 1e-12), 0.0) * config.synopsis_weight
    synopsis[np.asarray(items.synopsis_missing, bool)] = 0.0
    blocks.append(sp.csr_matrix(synopsis.astype(np.float32)))
    return sp.hstack(blocks, format="csr", dtype=np.float32)


def lightfm_user_features(users: UserData, identity_user_ids: np.ndarray, config: LightFMConfig) -> sp.csr_matrix:
    """[n_users, n_identity + sum(cardinality + 1)]: identity | one-hot per categorical user field (code 0 = unknown,
    no bit); the field bits of a user sum to 1."""
    n = users.n_users
    parts = []
    if config.user_identity:
        pos, known = _user_positions(identity_user_ids, users.user_ids)
        rows = np.flatnonzero(known)
        parts.append(sp.csr_matrix((np.ones(len(rows), np.float32), (rows, pos[known])),
                                   shape=(n, len(identity_user_ids))))
    codes = np.asarray(users.feature_codes, dtype=np.int64)
    n_fields = codes.shape[1] if codes.ndim == 2 else 0
    for j, cardinality in enumerate(users.feature_cardinalities):
        has = codes[:, j] > 0
        rows = np.flatnonzero(has)
        parts.append(sp.csr_matrix((np.full(len(rows), 1.0 / max(n_fields, 1), np.float32),
                                    (rows, codes[has, j] - 1)), shape=(n, cardinality)))
    if not parts:
        return sp.csr_matrix((n, 0), dtype=np.float32)
    return sp.hstack(parts, format="csr", dtype=np.float32)


@dataclass
class FittedLightFM:
    name: str
    config: LightFMConfig
    model: Any
    identity_title_ids: np.ndarray
    identity_user_ids: np.ndarray
    feature_cardinalities: list[int]

    def embed(self, items: ItemFeatures, users: UserData) -> PeerScores:
        if list(users.feature_cardinalities) != list(self.feature_cardinalities):
            raise ValueError("the scoring users' feature cardinalities differ from the training users'")
        item_bias, item_emb = self.model.get_item_representations(
            lightfm_item_features(items, self.identity_title_ids, self.config))
        user_bias, user_emb = self.model.get_user_representations(
            lightfm_user_features(users, self.identity_user_ids, self.config))
        # LightFM's prediction is u.i + b_u + b_i; b_u does not change a user's ranking and is dropped.
        item = np.hstack([item_emb, item_bias[:, None]]).astype(np.float32)
        user = np.hstack([user_emb, np.ones((users.n_users, 1))]).astype(np.float32)
        return PeerScores(user, item, np.ones(items.n_titles, dtype=bool))


class LightFMAdapter:
    """LightFM (WARP) with identity + categorical + synopsis item features and identity + categorical user features,
    trained on binary watches of X ∪ Y over the trainable titles; scores every title from its features."""

    name = "lightfm"
    config_type = LightFMConfig
    scores_cold = True

    def fit(self, training: TrainingSet, config: LightFMConfig = LightFMConfig()) -> FittedLightFM:
        *_, (_, fitted) = self.fit_stages(training, config, (config.epochs,))
        return fitted

    def fit_stages(self, training: TrainingSet, config: LightFMConfig, epochs: tuple[int, ...]):
        """Yield (epochs, fitted) after each of the increasing ``epochs`` counts of one training run; the fitted
        model keeps training after the caller resumes the iterator (``fit`` with ``epochs=e`` equals stage e: LightFM's
        ``fit`` is ``fit_partial`` from a reset state, epoch after epoch)."""
        from lightfm import LightFM

        if list(epochs) != sorted(set(epochs)) or epochs[0] < 1:
            raise ValueError(f"epochs must be increasing positive counts, got {epochs}")
        columns = np.flatnonzero(training.trainable)
        title_ids = training.items.title_ids[columns]
        interactions = training.matrix[:, columns].tocoo().astype(np.float32)
        interactions.data[:] = 1.0
        item_features = lightfm_item_features(training.items, title_ids, config)[columns]
        user_ids = training.users.user_ids.copy()
        user_features = lightfm_user_features(training.users, user_ids, config)
        model = LightFM(no_components=config.no_components, loss=config.loss, learning_rate=config.learning_rate,
                        item_alpha=config.item_alpha, user_alpha=config.user_alpha, max_sampled=config.max_sampled,
                        random_state=np.random.RandomState(config.seed))
        done = 0
        for target in epochs:
            model.fit_partial(interactions, user_features=user_features, item_features=item_features,
                              epochs=target - done, num_threads=config.num_threads)
            done = target
            yield target, FittedLightFM(self.name, replace(config, epochs=target), model, title_ids, user_ids,
                                        list(training.users.feature_cardinalities))


# --- the two-tower variants as a peer (so the holdout protocol can retrain them) ----------------------------------


@dataclass(frozen=True)
class TwoTowerConfig:
    variant: str = "attention_no_id"
    train: Any = None  # a model.train.TrainConfig; None: its defaults
    threads: int = 2


@dataclass
class FittedTwoTower:
    name: str
    config: TwoTowerConfig
    model: Any

    def embed(self, items: ItemFeatures, users: UserData) -> PeerScores:
        from rec_assets.model.checkpoint import embed_items, embed_users

        return PeerScores(embed_users(self.model, users, items), embed_items(self.model, items),
                          np.ones(items.n_titles, dtype=bool))


class TwoTowerAdapter:
    """A two-tower variant trained by ``model.train.train_variant`` on the training set's X -> Y (its own protocol:
    history X as user-tower input, Y as positives, ID embeddings only for trainable titles)."""

    config_type = TwoTowerConfig
    scores_cold = True

    def __init__(self, variant: str = "attention_no_id") -> None:
        self.variant = variant
        self.name = f"two_tower:{variant}"

    def fit(self, training: TrainingSet, config: TwoTowerConfig | None = None) -> FittedTwoTower:
        from rec_assets.model.train import TrainConfig, train_variant

        config = config or TwoTowerConfig(variant=self.variant)
        torch.set_num_threads(config.threads)
        result = train_variant(config.variant, training.items, training.users, training.positives,
                               config.train or TrainConfig(device="cpu"))
        return FittedTwoTower(self.name, config, result.model)


ADAPTERS: dict[str, PeerAdapter] = {"als": ALSAdapter(), "bpr": BPRAdapter(), "lightfm": LightFMAdapter()}


def adapter(name: str) -> PeerAdapter:
    """``als``, ``bpr``, ``lightfm`` or ``two_tower:<variant>``."""
    if name.startswith("two_tower:"):
        return TwoTowerAdapter(name.split(":", 1)[1])
    if name not in ADAPTERS:
        raise KeyError(f"unknown peer {name!r}; known: {sorted(ADAPTERS)} and two_tower:<variant>")
    return ADAPTERS[name]


def config_dict(config: Any) -> dict:
    try:
        return {k: (v if isinstance(v, (int, float, str, bool)) or v is None else repr(v))
                for k, v in asdict(config).items()}
    except TypeError:
        return {"repr": repr(config)}
