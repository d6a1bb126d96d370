"""The one training loop: positives from window Y, negatives sampled uniformly from unwatched titles, BCE on u . i.

An "example" is one scored (user, title) pair: a positive or one of its negatives. A batch is `batch_size`
positives, each with `negative_rate` negatives; the user embedding is computed once per positive and the item
tower runs only over the distinct titles of the batch.

History-window positives (`TrainConfig.history_positives`, on by default): Y holds ~1.5 positives per user on the
simulator's default preset (9.4k in all) and the towers overfit them within two epochs; X holds ~65 watches per
user. Each training user's last k titles of X (and the k before those, per extra cut) are added as positives,
read against the history before them. Only X and Y events are used, so nothing of Y' leaks; validation (early
stopping) still scores Y positives of held-out users only.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from rec_assets.model.data import (
    Interactions, ItemFeatures, ItemTensors, UserData, UserTensors, contains, item_tensors, sample_negatives,
    sorted_unique, user_tensors, watched_keys,
)
from rec_assets.model.towers import TwoTowerModel
from rec_assets.model.variants import build_model


@dataclass(frozen=True)
class TrainConfig:
    negative_rate: int = 20  # negatives per positive, 1..30 (paper: stable above 20)
    learning_rate: float = 1e-3
    batch_size: int = 256  # positives per batch; a batch scores batch_size * (1 + negative_rate) pairs
    epochs: int = 10
    validation_share: float = 0.1  # share of users held out for the validation loss / early stopping
    patience: int = 2  # epochs without a validation improvement before stopping
    min_improvement: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    # "id_known": negatives only among titles with an event in the training period; "all": every title row.
    # The default keeps titles without any event (the scoring week's cold titles, if the features list them)
    # from being trained as negatives only, which would teach the metadata tower to bury them.
    negative_pool: str = "id_known"
    # linear learning-rate warmup over the first optimizer steps. Adam's first steps, before its second-moment
    # estimates settle, overshoot on wide dense inputs: with EfficientNet's 1280-float cover art the cover-art-only
    # tower's validation loss rose from 0.757 to 1.02 in epoch one on the tiny preset and early stopping ended
    # there; 10 steps of warmup gave 0.182 (0 turns it off)
    warmup_steps: int = 10
    max_grad_norm: float | None = None  # clip the global gradient norm (None: no clipping)
    # Extra positives from the training history X itself: for every training user, the last
    # `history_positives` titles of X become positives scored against the history before them, and
    # `history_cuts` such windows are taken back in time (cut j: positives X[n-j*k : n-(j-1)*k], history
    # X[: n-j*k]). Y alone holds ~1.5 positives per user on the simulator; X holds ~65. No event outside X and Y
    # is used. 0 turns it off (Y positives only, the paper's setup).
    history_positives: int = 2
    history_cuts: int = 2
    weight_decay: float = 0.0  # Adam's L2 penalty
    progress_every_s: float = 5.0
    sample_chunk_batches: int = 64  # negatives are drawn for this many batches at a time

    def __post_init__(self) -> None:
        if not 1 <= self.negative_rate <= 30:
            raise ValueError(f"negative_rate must be in 1..30, got {self.negative_rate}")
        if not 0.0 <= self.validation_share < 1.0:
            raise ValueError(f"validation_share must be in [0, 1), got {self.validation_share}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.history_positives < 0 or self.history_cuts < 1:
            raise ValueError("history_positives must be >= 0 and history_cuts >= 1")
        if self.negative_pool not in ("id_known", "all"):
            raise ValueError(f"negative_pool must be 'id_known' or 'all', got {self.negative_pool!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    model: TwoTowerModel  # the weights of the best validation epoch, on the CPU
    train_loss: list[float]  # per epoch, mean over its examples
    val_loss: list[float]  # per epoch (empty without a validation share)
    initial_val_loss: float  # before the first step (nan without validation)
    best_val_loss: float
    best_epoch: int  # 0-based
    epochs_run: int
    examples_seen: int
    wall_seconds: float  # everything, validation included
    examples_per_second: float  # training examples / (batch assembly + forward/backward/step)
    parameter_count: int
    compute_seconds: float  # forward, backward, optimizer step
    assembly_seconds: float  # negative sampling, gathering, transfers
    device: str
    history: list[dict] = field(default_factory=list)  # every on_progress record

    @property
    def compute_share(self) -> float:
        return self.compute_seconds / max(self.compute_seconds + self.assembly_seconds, 1e-12)

    @property
    def assembly_share(self) -> float:
        return 1.0 - self.compute_share


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(name)


@dataclass
class Batch:
    users: UserTensors  # [P]
    items: ItemTensors  # [U] distinct titles of the batch
    item_index: torch.Tensor  # [P, 1 + rate] position in `items`; column 0 is the positive
    n_examples: int


def assemble_batch(users: UserTensors, items: ItemTensors, user_rows: torch.Tensor, title_rows: torch.Tensor,
                   negatives: torch.Tensor) -> Batch:
    """The tower inputs for positives (user_rows, title_rows) and their negatives [P, rate]."""
    candidates = torch.cat([title_rows.unsqueeze(1), negatives], dim=1)
    distinct, item_index = torch.unique(candidates, return_inverse=True)
    return Batch(users.take(user_rows), items.take(distinct), item_index, candidates.numel())


def truncated_history(users: UserData, drop: int) -> UserData:
    """`users` with the last `drop` titles of every history removed (a shorter history keeps nothing)."""
    lengths = np.diff(users.history_offsets)
    kept = np.maximum(lengths - drop, 0)
    position = np.arange(len(users.history_items)) - np.repeat(users.history_offsets[:-1], lengths)
    keep = position < np.repeat(kept, lengths)
    return UserData(users.user_ids, users.feature_codes, users.feature_cardinalities,
                    np.concatenate([[0], np.cumsum(kept)]).astype(np.int64), users.history_items[keep])


def history_windows(users: UserData, eligible: np.ndarray, k: int, cuts: int) -> list[tuple[UserData, np.ndarray,
                                                                                              np.ndarray, np.ndarray]]:
    """Per cut j = 1..cuts: (users with the last j*k history titles dropped, the user rows that have at least one
    title left before the cut, and the (user row, title row) positives of the window just after the cut)."""
    out = []
    offsets = users.history_offsets
    lengths = np.diff(offsets)
    for j in range(1, cuts + 1):
        rows = eligible[lengths[eligible] > j * k]  # at least one title remains as history
        if len(rows) == 0:
            break
        starts = offsets[rows + 1] - j * k  # window [start, start + k) of the CSR row
        pos_users = np.repeat(rows, k)
        pos_titles = users.history_items[(starts[:, None] + np.arange(k)[None, :]).ravel()]
        out.append((truncated_history(users, j * k), rows, pos_users, pos_titles))
    return out


def concat_users(parts: list[UserTensors]) -> UserTensors:
    return UserTensors(torch.cat([p.history for p in parts]), torch.cat([p.features for p in parts]),
                       torch.cat([p.id_rows for p in parts]))


def with_history_positives(config: TrainConfig, items: ItemFeatures, users: UserData, title_vocab: np.ndarray,
                           user_vocab: np.ndarray, history_len: int, device: torch.device, held_out: np.ndarray,
                           pool: np.ndarray, user_inputs: UserTensors, train_users: np.ndarray,
                           train_titles: np.ndarray) -> tuple[UserTensors, np.ndarray, np.ndarray, np.ndarray]:
    """Add the history-window positives of `config` (none when history_positives is 0) to the Y positives.

    Returns (user tower inputs, tower row of each positive, owner row of each positive, title row of each positive).
    The tower row is what the user tower reads: the real user for a Y positive, a copy of the user with the
    history cut before the window for a history positive; the owner row is the real user, whose watches the
    negatives avoid. Held-out (validation) users contribute no history positives."""
    if config.history_positives == 0:
        return user_inputs, train_users, train_users, train_titles
    eligible = np.setdiff1d(np.arange(users.n_users), held_out)
    in_pool = np.zeros(items.n_titles, dtype=bool)
    in_pool[pool] = True
    parts, tower_rows, owner_rows, titles = [user_inputs], [train_users], [train_users], [train_titles]
    base = users.n_users
    for truncated, rows, pos_users, pos_titles in history_windows(users, eligible, config.history_positives,
                                                                  config.history_cuts):
        parts.append(user_tensors(truncated, items, title_vocab, user_vocab, history_len, rows=rows, device=device,
                                  validate=False))
        keep = in_pool[pos_titles]
        tower_rows.append(base + np.searchsorted(rows, pos_users[keep]))
        owner_rows.append(pos_users[keep])
        titles.append(pos_titles[keep])
        base += len(rows)
    return (concat_users(parts), np.concatenate(tower_rows).astype(np.int64),
            np.concatenate(owner_rows).astype(np.int64), np.concatenate(titles).astype(np.int64))


def batch_loss(model: TwoTowerModel, batch: Batch) -> torch.Tensor:
    """Mean binary cross-entropy of sigmoid(u . i): label 1 in column 0, 0 elsewhere."""
    u = model.user_tower(batch.users)  # [P, D]
    v = model.item_tower(batch.items)  # [U, D]
    # index_select, not v[item_index]: its backward is an index_add, several times faster on the CPU than the
    # accumulating index_put that advanced indexing backpropagates through
    candidates = v.index_select(0, batch.item_index.reshape(-1)).view(*batch.item_index.shape, -1)
    logits = torch.einsum("pd,pkd->pk", u, candidates)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(logits, labels)


@dataclass
class TrainingSetup:
    """What a training loop indexes, built once on the device: tower inputs, the negative pool, the user-level
    validation split, the training positives (history-window ones added) and the validation negatives."""

    item_inputs: ItemTensors
    user_inputs: UserTensors
    watched: np.ndarray
    pool: np.ndarray
    train_users: np.ndarray  # user-tower row of each training positive
    train_owners: np.ndarray  # the real user of each training positive (whose watches negatives avoid)
    train_titles: np.ndarray
    val_users: np.ndarray
    val_titles: np.ndarray
    val_negatives: np.ndarray  # drawn once, so epochs are compared on the same pairs
    epoch_seed: np.random.SeedSequence


def prepare_training(model: TwoTowerModel, items: ItemFeatures, users: UserData, positives: Interactions,
                     config: TrainConfig, device: torch.device) -> TrainingSetup:
    """The set-up shared by the single-process loop and the DDP worker (``model`` already on ``device``).
    Whole users are held out, so the validation loss measures users the model did not fit."""
    if len(positives) == 0:
        raise ValueError("no positives to train on")
    split_seed, val_seed, epoch_seed = np.random.SeedSequence(config.seed).spawn(3)
    title_vocab, user_vocab = model.title_vocab.cpu().numpy(), model.user_vocab.cpu().numpy()
    item_inputs = item_tensors(items, title_vocab, device)
    user_inputs = user_tensors(users, items, title_vocab, user_vocab, model.config.history_len, device=device)
    watched = watched_keys(users, positives, items.n_titles)
    pool = np.flatnonzero(items.id_known) if config.negative_pool == "id_known" else np.arange(items.n_titles)

    users_with_positives = sorted_unique(positives.user_rows)
    held_out = np.random.default_rng(split_seed).permutation(users_with_positives)
    held_out = held_out[: int(round(config.validation_share * len(users_with_positives)))]
    is_val = contains(np.sort(held_out), positives.user_rows)
    train_users, train_titles = positives.user_rows[~is_val], positives.title_rows[~is_val]
    val_users, val_titles = positives.user_rows[is_val], positives.title_rows[is_val]
    if len(train_users) == 0:
        raise ValueError("validation_share leaves no training positives")
    user_inputs, train_users, train_owners, train_titles = with_history_positives(
        config, items, users, title_vocab, user_vocab, model.config.history_len, device, held_out, pool,
        user_inputs, train_users, train_titles)
    val_negatives = sample_negatives(np.random.default_rng(val_seed), val_users, config.negative_rate, pool,
                                     watched, items.n_titles)
    return TrainingSetup(item_inputs, user_inputs, watched, pool, train_users, train_owners, train_titles,
                         val_users, val_titles, val_negatives, epoch_seed)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Adam:
    """Adam, fused: one kernel updates every parameter. The for-each loop of the unfused CPU Adam makes about ten
    passes over every parameter (the embedding tables included) per step; on the `large` preset's profile it
    took about a third of the step time, the fused kernel about 4 % (rec_assets/bench/findings.md)."""
    return torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                            fused=True)


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   config: TrainConfig, steps_taken: int) -> None:
    """Backward pass, optional gradient clipping, learning-rate warmup, and one optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    if steps_taken <= config.warmup_steps and config.warmup_steps:
        scale = (steps_taken + 1) / (config.warmup_steps + 1) if steps_taken < config.warmup_steps else 1.0
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * scale
    optimizer.step()


def train_variant(variant: str, items: ItemFeatures, users: UserData, positives: Interactions,
                  config: TrainConfig = TrainConfig(), on_progress: Callable[[dict], None] | None = None,
                  **model_overrides) -> TrainResult:
    """Build `variant` (initialised from config.seed) and train it."""
    model = build_model(variant, items, users, seed=config.seed, **model_overrides)
    return train(model, items, users, positives, config, on_progress)


def train(model: TwoTowerModel, items: ItemFeatures, users: UserData, positives: Interactions,
          config: TrainConfig = TrainConfig(), on_progress: Callable[[dict], None] | None = None) -> TrainResult:
    """Train `model` (built by variants.build_model on these items/users) on history `users` -> `positives`.
    The model is trained in place and returned in the result, best validation epoch restored, on the CPU.

    Deterministic on the CPU for a fixed config.seed: all randomness (validation split, batch order, negatives)
    comes from one numpy SeedSequence, and the batch order is fixed."""
    started = time.perf_counter()
    device = resolve_device(config.device)
    positives.validate(users.n_users, items.n_titles)
    if model.config.n_id_titles != int(items.id_known.sum()) or model.config.n_id_users != users.n_users:
        raise ValueError("the model's ID vocabularies were not built from these items/users (use build_model)")
    rate = config.negative_rate
    model = model.to(device)
    setup = prepare_training(model, items, users, positives, config, device)
    item_inputs, user_inputs, pool, watched = setup.item_inputs, setup.user_inputs, setup.pool, setup.watched
    train_users, train_owners, train_titles = setup.train_users, setup.train_owners, setup.train_titles
    val_users, val_titles, val_negatives = setup.val_users, setup.val_titles, setup.val_negatives
    val_tensors = [torch.from_numpy(a).to(device) for a in (val_users, val_titles, val_negatives)]

    def validation_loss() -> float:
        if len(val_users) == 0:
            return float("nan")
        model.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(val_users), config.batch_size * 4):
                part = slice(start, start + config.batch_size * 4)
                batch = assemble_batch(user_inputs, item_inputs, *(t[part] for t in val_tensors))
                total += float(batch_loss(model, batch)) * batch.n_examples
        model.train()
        return total / (len(val_users) * (1 + rate))

    optimizer = make_optimizer(model, config)
    steps_taken = 0
    rng = np.random.default_rng(setup.epoch_seed)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    history: list[dict] = []

    def report(record: dict) -> None:
        history.append(record)
        if on_progress is not None:
            on_progress(record)

    initial_val = validation_loss()
    best_val, best_epoch, best_state = float("inf"), -1, None
    train_losses, val_losses = [], []
    examples_seen, compute_s, assembly_s = 0, 0.0, 0.0
    chunk = config.batch_size * config.sample_chunk_batches
    n_batches = -(-len(train_users) // config.batch_size)
    epochs_run, epochs_without_gain = 0, 0
    for epoch in range(config.epochs):
        epoch_loss = torch.zeros((), device=device)
        epoch_examples, step, last_report = 0, 0, time.perf_counter()
        order = rng.permutation(len(train_users))
        for chunk_start in range(0, len(order), chunk):
            t0 = time.perf_counter()
            picked = order[chunk_start: chunk_start + chunk]
            negatives = sample_negatives(rng, train_owners[picked], rate, pool, watched, items.n_titles)
            chunk_users = torch.from_numpy(train_users[picked]).to(device)
            chunk_titles = torch.from_numpy(train_titles[picked]).to(device)
            chunk_negatives = torch.from_numpy(negatives).to(device)
            assembly_s += time.perf_counter() - t0
            for start in range(0, len(picked), config.batch_size):
                t0 = time.perf_counter()
                part = slice(start, start + config.batch_size)
                batch = assemble_batch(user_inputs, item_inputs, chunk_users[part], chunk_titles[part],
                                       chunk_negatives[part])
                sync()
                t1 = time.perf_counter()
                loss = batch_loss(model, batch)
                optimizer_step(model, optimizer, loss, config, steps_taken)
                steps_taken += 1
                epoch_loss += loss.detach() * batch.n_examples
                sync()
                t2 = time.perf_counter()
                assembly_s += t1 - t0
                compute_s += t2 - t1
                epoch_examples += batch.n_examples
                examples_seen += batch.n_examples
                step += 1
                if t2 - last_report >= config.progress_every_s:
                    last_report = t2
                    report({"event": "progress", "epoch": epoch, "step": step, "steps_per_epoch": n_batches,
                            "train_loss": float(epoch_loss) / epoch_examples, "val_loss": None,
                            "examples_per_second": examples_seen / max(compute_s + assembly_s, 1e-12)})
        epochs_run += 1
        train_losses.append(float(epoch_loss) / epoch_examples)
        val = validation_loss()
        if len(val_users):
            val_losses.append(val)
        # without validation users the last epoch counts as the best
        score = val if len(val_users) else -epoch
        if score < best_val - config.min_improvement:
            best_val, best_epoch, epochs_without_gain = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            epochs_without_gain += 1
        report({"event": "epoch", "epoch": epoch, "step": step, "steps_per_epoch": n_batches,
                "train_loss": train_losses[-1], "val_loss": val if len(val_users) else None,
                "examples_per_second": examples_seen / max(compute_s + assembly_s, 1e-12)})
        if len(val_users) and epochs_without_gain >= config.patience:
            break

    model.load_state_dict(best_state)
    model = model.cpu().eval()
    return TrainResult(
        model=model,
        train_loss=train_losses,
        val_loss=val_losses,
        initial_val_loss=initial_val,
        best_val_loss=best_val if len(val_users) else float("nan"),
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        examples_seen=examples_seen,
        wall_seconds=time.perf_counter() - started,
        examples_per_second=examples_seen / max(compute_s + assembly_s, 1e-12),
        parameter_count=model.parameter_count(),
        compute_seconds=compute_s,
        assembly_seconds=assembly_s,
        device=str(device),
        history=history,
    )

