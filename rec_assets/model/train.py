"""The one training loop, in one process (world size 1) or as one rank of a DDP group (``rank``, ``world_size``).

An example is (user, history prefix, title): the user tower reads the user's watches before the title, the item
tower the title. Y labels are examples with all of X as history (the paper's setup); `next_watch_per_user` adds,
each epoch, that many watches of X per training user as next-watch examples (YouTube-DNN). Only X and Y reach
training. Losses, negatives, ID and modality dropout, and what each measured: docs/training.md. Every draw comes
from one numpy SeedSequence, so the same seed gives the same weights on the CPU.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from rec_assets.model.data import (
    Interactions, ItemFeatures, ItemTensors, UserData, contains, item_tensors, sample_negatives, sorted_unique,
    watched_keys,
)
from rec_assets.model.examples import (
    Batch, ColdColumns, Examples, HistoryIndex, assemble_batch, draw_per_user, drop_item_inputs, history_candidates,
    history_index, log_expected_draws, per_user_cap_within,
)
from rec_assets.model.towers import TwoTowerModel
from rec_assets.model.variants import build_model

LOSSES = ("bce", "sampled_softmax")


def _parse_field(name: str, annotation: str, text: str):
    """``text`` as a value of a TrainConfig field annotated ``annotation`` (the dataclass keeps it as a string)."""
    kinds = [k.strip() for k in annotation.split("|")]
    if "None" in kinds and text.lower() == "none":
        return None
    kind = next(k for k in kinds if k != "None")
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        return {"int": int, "float": float, "str": str}[kind](text)
    except ValueError:
        raise ValueError(f"training override {name}={text!r}: not a {annotation}") from None


@dataclass(frozen=True)
class TrainConfig:
    # "bce": the paper's sigmoid BCE, each positive against `negative_rate` uniform unwatched titles;
    # "sampled_softmax": softmax over the batch's positives plus `mixed_negatives` shared uniform titles, logQ-corrected
    loss: str = "sampled_softmax"
    negative_rate: int = 20  # bce: negatives per positive, 1..30 (paper: stable above 20)
    mixed_negatives: int = 512  # sampled_softmax: uniform titles shared by a batch's rows (0: in-batch only)
    logq_correction: bool = True  # sampled_softmax: subtract log q (expected draws of the title into the batch)
    # examples drawn from X per training user and epoch, among those next_watch_recent keeps (0: Y labels only,
    # the paper; -1: all of them, within the budget below). With the default last 32 watches, 32 takes them all
    next_watch_per_user: int = 32
    # at most this many examples from X per epoch, as the largest equal per-user cap that fits (light users keep
    # every watch), so an epoch's cost stays bounded: MovieLens 100k fits whole, the simulator's default week
    # (367k watches) fits 32 per user (0: no budget)
    max_history_examples: int = 400_000
    # only each user's last N watches of X are examples (0: every watch). Old watches teach a title mix unlike
    # Y's: on the simulator's validation week the last 32 instead of 32 drawn from all of X gave warm P@6 +0.96
    # [0.68, 1.25] (cold not separable), and every tiny-preset tower's held-out loss now falls; on MovieLens'
    # random-item (LightFM) protocol, which has no time order, it costs AUC -1.05 (docs/training.md)
    next_watch_recent: int = 32
    # what the user tower reads for an example from X: "leave_one_out", every other watch of X (the user's whole
    # taste: MovieLens LightFM-protocol AUC 0.813 vs 0.763 for "next_watch", the watches before it)
    history_view: str = "leave_one_out"
    # share of a batch's titles trained as cold ones (DropoutNet): ID zeroed, popularity bins replaced by no_views
    id_dropout: float = 0.3
    modality_dropout: float = 0.0  # probability of dropping each metadata type of a title (one always stays)
    # Adam's step size: 2e-3 with every watch measured better than 1e-3 on a MovieLens validation week
    # (docs/training.md), the default stays 1e-3 with the default 32 per user
    learning_rate: float = 1e-3
    batch_size: int = 256  # examples (positives) per batch
    epochs: int = 10
    validation_share: float = 0.1  # share of users held out for the validation loss / early stopping
    patience: int = 2  # epochs without a validation improvement before stopping
    min_improvement: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    # "id_known": negatives only among titles with an event in the training period; "all": every title row. The
    # default keeps titles without any event from being trained as negatives only (it buries cold titles)
    negative_pool: str = "id_known"
    # linear learning-rate warmup over the first steps: Adam's first steps overshoot on wide dense inputs (the
    # 1280-float cover art's validation loss rose 0.757 -> 1.02 in epoch one on the tiny preset; 0.182 with 10)
    warmup_steps: int = 10
    max_grad_norm: float | None = None  # clip the global gradient norm (None: no clipping)
    weight_decay: float = 0.0  # Adam's L2 penalty
    progress_every_s: float = 5.0
    sample_chunk_batches: int = 64  # negatives are drawn for this many batches at a time

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not 1 <= self.negative_rate <= 30:
            raise ValueError(f"negative_rate must be in 1..30, got {self.negative_rate}")
        if self.history_view not in ("next_watch", "leave_one_out"):
            raise ValueError(f"history_view must be 'next_watch' or 'leave_one_out', got {self.history_view!r}")
        if self.mixed_negatives < 0:
            raise ValueError(f"mixed_negatives must be >= 0, got {self.mixed_negatives}")
        if self.max_history_examples < 0:
            raise ValueError(f"max_history_examples must be >= 0, got {self.max_history_examples}")
        if self.next_watch_recent < 0:
            raise ValueError(f"next_watch_recent must be >= 0, got {self.next_watch_recent}")
        if self.next_watch_per_user < -1:
            raise ValueError(f"next_watch_per_user must be -1 (all), 0 or more, got {self.next_watch_per_user}")
        for name in ("id_dropout", "modality_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.validation_share < 1.0:
            raise ValueError(f"validation_share must be in [0, 1), got {self.validation_share}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.negative_pool not in ("id_known", "all"):
            raise ValueError(f"negative_pool must be 'id_known' or 'all', got {self.negative_pool!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, assignments: Sequence[str]) -> "TrainConfig":
        """A copy with ``field=value`` assignments applied, each value parsed as its field's type (``none`` for
        an optional field): how a benchmark run measures one option without editing code."""
        types = {f.name: f.type for f in fields(self)}
        changes: dict = {}
        for assignment in assignments:
            name, sep, text = assignment.partition("=")
            name = name.strip()
            if not sep or name not in types:
                raise ValueError(f"training override {assignment!r}: expected FIELD=VALUE with FIELD one of "
                                 f"{', '.join(sorted(types))}")
            changes[name] = _parse_field(name, str(types[name]), text.strip())
        return replace(self, **changes)


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


# --- losses ------------------------------------------------------------------------------------------------------


def batch_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Summed loss of the batch: BCE of sigmoid(u . i) (label 1 in column 0), or the logQ-corrected softmax
    cross-entropy of each row's positive among the batch's candidates."""
    u = model.user_tower(batch.users)  # [P, D]
    v = model.item_tower(batch.items)  # [U, D]
    if batch.item_index.dim() == 1:
        logits = u @ v.T
        if batch.log_q is not None:
            logits = logits - batch.log_q
        return F.cross_entropy(logits, batch.item_index, reduction="sum")
    # index_select, not v[item_index]: its backward is an index_add, several times faster on the CPU
    candidates = v.index_select(0, batch.item_index.reshape(-1)).view(*batch.item_index.shape, -1)
    logits = torch.einsum("pd,pkd->pk", u, candidates)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum")


class LossModule(nn.Module):
    """The towers and `batch_loss` as one module, so DDP sees one forward per step."""

    def __init__(self, model: TwoTowerModel):
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> torch.Tensor:
        return batch_loss(self.model, batch)


# --- the loop ----------------------------------------------------------------------------------------------------


@dataclass
class TrainingSetup:
    """What the loop indexes, built once on the device."""

    item_inputs: ItemTensors
    index: HistoryIndex
    watched: np.ndarray
    pool: np.ndarray
    labels: Examples  # Y positives of the training users, with all of X as history
    next_watch: Examples  # every next-watch candidate of the training users (drawn from per epoch)
    validation: Examples  # Y positives of the held-out users
    val_negatives: np.ndarray  # bce [n_val, rate] / softmax [n_val_batches, mixed], drawn once
    log_q: torch.Tensor | None  # softmax: [n_titles]
    epoch_seed: np.random.SeedSequence


def prepare_training(model: TwoTowerModel, items: ItemFeatures, users: UserData, positives: Interactions,
                     config: TrainConfig, device: torch.device) -> TrainingSetup:
    """Whole users are held out, so the validation loss measures users the model did not fit."""
    if len(positives) == 0:
        raise ValueError("no positives to train on")
    split_seed, val_seed, epoch_seed = np.random.SeedSequence(config.seed).spawn(3)
    title_vocab, user_vocab = model.title_vocab.cpu().numpy(), model.user_vocab.cpu().numpy()
    index = history_index(users, items, title_vocab, user_vocab, model.config.history_len, device)
    watched = watched_keys(users, positives, items.n_titles)
    pool = np.flatnonzero(items.id_known) if config.negative_pool == "id_known" else np.arange(items.n_titles)

    users_with_positives = sorted_unique(positives.user_rows)
    held_out = np.random.default_rng(split_seed).permutation(users_with_positives)
    held_out = np.sort(held_out[: int(round(config.validation_share * len(users_with_positives)))])
    is_val = contains(held_out, positives.user_rows)
    if is_val.all():
        raise ValueError("validation_share leaves no training positives")
    every = Examples(positives.user_rows, index.lengths[positives.user_rows], np.full(len(positives), -1),
                     positives.title_rows)
    labels, validation = every.take(np.flatnonzero(~is_val)), every.take(np.flatnonzero(is_val))
    next_watch = history_candidates(index, np.setdiff1d(np.arange(users.n_users), held_out), pool, items.n_titles,
                                    config.history_view, config.next_watch_recent)
    if config.next_watch_per_user == 0:
        next_watch = next_watch.take(np.zeros(0, dtype=np.int64))
    rng = np.random.default_rng(val_seed)
    log_q = None
    if config.loss == "bce":
        val_negatives = sample_negatives(rng, validation.owners, config.negative_rate, pool, watched, items.n_titles)
    else:
        n_val_batches = -(-len(validation) // config.batch_size)
        val_negatives = pool[rng.integers(0, len(pool), size=(n_val_batches, config.mixed_negatives))]
        if config.logq_correction:
            titles = np.concatenate([labels.titles, next_watch.titles])
            frequency = np.bincount(titles, minlength=items.n_titles) / max(len(titles), 1)
            log_q = torch.from_numpy(log_expected_draws(frequency, config.batch_size, config.mixed_negatives,
                                                        len(pool)).astype(np.float32)).to(device)
    return TrainingSetup(item_tensors(items, title_vocab, device), index, watched, pool, labels, next_watch,
                         validation, val_negatives, log_q, epoch_seed)


def epoch_draw_per_user(config: TrainConfig, candidates: Examples) -> int:
    """Examples of X per user and epoch: `next_watch_per_user`, lowered to the largest equal cap that keeps an
    epoch within `max_history_examples` (-1: all). Light users keep every watch; heavy ones give equal shares."""
    cap = per_user_cap_within(candidates.owners, config.max_history_examples)
    wanted = config.next_watch_per_user
    if cap < 0:
        return wanted
    return cap if wanted < 0 else min(wanted, cap)


def build_batch(setup: TrainingSetup, config: TrainConfig, examples: Examples, negatives: np.ndarray, rows: slice,
                rank: int = 0, world: int = 1) -> tuple[Batch, int]:
    """This rank's share of the global batch `rows` of `examples`, and the global number of loss terms.
    `negatives`: bce [len(examples), rate] per example; softmax [mixed] shared by the batch."""
    device = setup.index.offsets.device

    def to_device(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    n_global = rows.stop - rows.start
    mine = shard(n_global, rank, world)
    mine = slice(rows.start + mine.start, rows.start + mine.stop)
    user_input = setup.index.users(to_device(examples.owners[mine]), to_device(examples.cuts[mine]),
                                   to_device(examples.skips[mine]))
    if config.loss == "sampled_softmax":
        batch = assemble_batch(user_input, setup.item_inputs, to_device(examples.titles[mine]),
                               to_device(examples.titles[rows]), to_device(negatives), setup.log_q)
        return batch, n_global
    batch = assemble_batch(user_input, setup.item_inputs, to_device(examples.titles[mine]),
                           to_device(negatives[mine]))
    return batch, n_global * (1 + config.negative_rate)


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


def to_device_array(a: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(device)


def shard(n: int, rank: int, world: int) -> slice:
    """Rank's contiguous share of n rows (the first n % world ranks get one more)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def ddp_wrap(module: nn.Module) -> nn.Module:
    """DDP without per-step buffer syncs: the buffers (ID vocabularies, input statistics) are built identically
    on every rank and never change in training."""
    from torch.nn.parallel import DistributedDataParallel

    try:
        return DistributedDataParallel(module, forward_sync_buffers=False)
    except TypeError:  # torch before forward_sync_buffers
        return DistributedDataParallel(module, broadcast_buffers=False)


def train_variant(variant: str, items: ItemFeatures, users: UserData, positives: Interactions,
                  config: TrainConfig = TrainConfig(), on_progress: Callable[[dict], None] | None = None,
                  rank: int = 0, world_size: int = 1, **model_overrides) -> TrainResult:
    """Build `variant` (initialised from config.seed) and train it."""
    model = build_model(variant, items, users, seed=config.seed, **model_overrides)
    return train(model, items, users, positives, config, on_progress, rank=rank, world_size=world_size)


def train(model: TwoTowerModel, items: ItemFeatures, users: UserData, positives: Interactions,
          config: TrainConfig = TrainConfig(), on_progress: Callable[[dict], None] | None = None,
          rank: int = 0, world_size: int = 1) -> TrainResult:
    """Train `model` (built by variants.build_model on these items/users) on history `users` -> `positives`, in
    place; returned in the result with the best validation epoch restored, on the CPU.

    `rank` of `world_size` > 1: this process is that rank of the initialised default process group; each global
    batch is cut into one shard of rows per rank, DDP averages the gradients, and every draw is made identically on
    every rank, so the weights equal single-process training up to floating-point summation order."""
    started = time.perf_counter()
    world = world_size
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not one of world size {world}")
    if world > 1 and not (dist.is_initialized() and dist.get_world_size() == world and dist.get_rank() == rank):
        raise ValueError(f"rank {rank} of world size {world} needs an initialised process group of that size "
                         "and rank (torch.distributed.init_process_group)")
    device = resolve_device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    positives.validate(users.n_users, items.n_titles)
    if model.config.n_id_titles != int(items.id_known.sum()) or model.config.n_id_users != users.n_users:
        raise ValueError("the model's ID vocabularies were not built from these items/users (use build_model)")
    softmax = config.loss == "sampled_softmax"
    model = model.to(device)
    setup = prepare_training(model, items, users, positives, config, device)
    pool, watched = setup.pool, setup.watched
    loss_module = LossModule(model)
    step_module = ddp_wrap(loss_module) if world > 1 else loss_module
    types = model.item_tower.type_names
    cold_columns = ColdColumns(to_device_array(items.interaction_columns, device),
                               to_device_array(items.no_views_columns, device))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def all_sum(values: list[float]) -> list[float]:
        if world == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def validation_loss() -> float:
        val = setup.validation
        if len(val) == 0:
            return float("nan")
        model.eval()
        total, terms = 0.0, 0
        with torch.no_grad():
            for b, start in enumerate(range(0, len(val), config.batch_size)):
                rows = slice(start, min(start + config.batch_size, len(val)))
                batch, n_terms = build_batch(setup, config, val, setup.val_negatives[b] if softmax else setup.val_negatives, rows, rank, world)
                total += float(loss_module(batch))
                terms += n_terms
        model.train()
        return all_sum([total])[0] / terms

    optimizer = make_optimizer(model, config)
    order_seed, drop_seed = setup.epoch_seed.spawn(2)
    rng, drop_rng = np.random.default_rng(order_seed), np.random.default_rng(drop_seed)
    history: list[dict] = []

    def report(record: dict) -> None:
        history.append(record)
        if on_progress is not None:
            on_progress(record)

    initial_val = validation_loss()
    best_val, best_epoch, best_state = float("inf"), -1, None
    train_losses, val_losses = [], []
    examples_seen, compute_s, assembly_s, steps_taken = 0, 0.0, 0.0, 0
    epochs_run, epochs_without_gain = 0, 0
    has_val = len(setup.validation) > 0
    per_user = epoch_draw_per_user(config, setup.next_watch)
    for epoch in range(config.epochs):
        epoch_loss, epoch_terms, step, last_report = 0.0, 0, 0, time.perf_counter()
        drawn = draw_per_user(rng, setup.next_watch, per_user)
        if config.max_history_examples and len(drawn) > config.max_history_examples:
            drawn = drawn.take(np.sort(rng.choice(len(drawn), config.max_history_examples, replace=False)))
        examples = Examples.concat([setup.labels, drawn])
        examples = examples.take(rng.permutation(len(examples)))
        n_batches = -(-len(examples) // config.batch_size)
        chunk = config.batch_size * config.sample_chunk_batches
        for chunk_start in range(0, len(examples), chunk):
            t0 = time.perf_counter()
            part = examples.take(np.arange(chunk_start, min(chunk_start + chunk, len(examples))))
            if softmax:
                n_chunk_batches = -(-len(part) // config.batch_size)
                negatives = pool[rng.integers(0, len(pool), size=(n_chunk_batches, config.mixed_negatives))]
            else:
                negatives = sample_negatives(rng, part.owners, config.negative_rate, pool, watched, items.n_titles)
            assembly_s += time.perf_counter() - t0
            for b, start in enumerate(range(0, len(part), config.batch_size)):
                t0 = time.perf_counter()
                rows = slice(start, min(start + config.batch_size, len(part)))
                batch, n_terms = build_batch(setup, config, part, negatives[b] if softmax else negatives, rows,
                                             rank, world)
                if config.id_dropout or config.modality_dropout:
                    draws = drop_rng.random((4, items.n_titles))[:, batch.title_rows.cpu().numpy()]
                    batch.items = drop_item_inputs(batch.items, draws, types, config.id_dropout,
                                                   config.modality_dropout, cold_columns)
                sync()
                t1 = time.perf_counter()
                loss = step_module(batch) * (world / n_terms)
                optimizer_step(model, optimizer, loss, config, steps_taken)
                steps_taken += 1
                epoch_loss += float(loss.detach()) * n_terms / world
                sync()
                t2 = time.perf_counter()
                assembly_s += t1 - t0
                compute_s += t2 - t1
                epoch_terms += n_terms
                step += 1
                if t2 - last_report >= config.progress_every_s:
                    last_report = t2
                    report({"event": "progress", "epoch": epoch, "step": step, "steps_per_epoch": n_batches,
                            "train_loss": epoch_loss / epoch_terms if world == 1 else None,  # no collective mid-epoch
                            "val_loss": None,
                            "examples_per_second": (examples_seen + epoch_terms) / max(compute_s + assembly_s,
                                                                                       1e-12)})
        examples_seen += epoch_terms
        epochs_run += 1
        train_losses.append(all_sum([epoch_loss])[0] / epoch_terms)
        val = validation_loss()
        if has_val:
            val_losses.append(val)
        score = val if has_val else -epoch  # without validation users the last epoch counts as the best
        if score < best_val - config.min_improvement:
            best_val, best_epoch, epochs_without_gain = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            epochs_without_gain += 1
        report({"event": "epoch", "epoch": epoch, "step": step, "steps_per_epoch": n_batches, "rank": rank,
                "world_size": world, "history_examples_per_user": per_user, "train_loss": train_losses[-1], "val_loss": val if has_val else None,
                "examples_per_second": examples_seen / max(compute_s + assembly_s, 1e-12)})
        if has_val and epochs_without_gain >= config.patience:
            break

    model.load_state_dict(best_state)
    model = model.cpu().eval()
    return TrainResult(
        model=model, train_loss=train_losses, val_loss=val_losses, initial_val_loss=initial_val,
        best_val_loss=best_val if has_val else float("nan"), best_epoch=best_epoch, epochs_run=epochs_run,
        examples_seen=examples_seen, wall_seconds=time.perf_counter() - started,
        examples_per_second=examples_seen / max(compute_s + assembly_s, 1e-12),
        parameter_count=model.parameter_count(), compute_seconds=compute_s, assembly_seconds=assembly_s,
        device=str(device) if world == 1 else f"{device} x{world}", history=history,
    )
