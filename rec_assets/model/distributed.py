"""Data-parallel training with torch.distributed DistributedDataParallel, launched by torchrun (pure torch code).

The same training as ``rec_assets.model.train.train``, split across processes: each global batch of
``batch_size`` positives (and their negatives) is cut into one contiguous shard per rank, every rank runs
the towers on its shard, and DDP all-reduces the gradients before the one optimizer step every rank takes.
All randomness (validation users, batch order, negatives) comes from the same seeded generators as the
single-process loop, drawn identically on every rank, so with the same seed and the same global batch the
trained weights equal single-process training up to floating-point summation order. Each rank's loss is its
shard's summed BCE scaled by ``world_size / global examples``: DDP's gradient average is then exactly the
gradient of the global batch mean, uneven last batches included. Backend: ``gloo`` on CPU, ``nccl`` on GPU.

Run by torchrun (one process per CPU socket or GPU), normally through Dagster Pipes
(``rec_assets/defs/distributed.py``)::

    torchrun --standalone --nproc_per_node 2 -m rec_assets.model.distributed \\
        --problem <training problem dir> --out <checkpoint.pt> --variant attention_id --config '{"epochs": 6}'

Rank 0 writes the checkpoint (``rec_assets.model.checkpoint.save_checkpoint``) and, when started by Dagster
Pipes, reports it as the asset's materialisation (path, sha256, losses; data version = sha256). Only the
lightweight ``dagster_pipes`` package is imported, and only then.

The training problem is a directory of ``.npy`` arrays plus ``meta.json`` (``problem_arrays`` /
``load_problem``), written by the orchestrating asset on storage every worker can read.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from rec_assets.model.checkpoint import save_checkpoint
from rec_assets.model.data import Interactions, ItemFeatures, UserData, sample_negatives
from rec_assets.model.towers import TwoTowerModel
from rec_assets.model.train import (
    TrainConfig, TrainResult, assemble_batch, make_optimizer, optimizer_step, prepare_training, resolve_device,
)
from rec_assets.model.variants import build_model

# TrainConfig fields this loop implements; any other field set away from its default is refused, so a new
# option of the single-process loop cannot be silently ignored here.
SUPPORTED_CONFIG = frozenset({
    "negative_rate", "learning_rate", "batch_size", "epochs", "validation_share", "patience", "min_improvement",
    "seed", "device", "negative_pool", "warmup_steps", "max_grad_norm", "progress_every_s", "sample_chunk_batches",
    "history_positives", "history_cuts", "weight_decay",
})


def check_supported(config: TrainConfig) -> None:
    unsupported = [f.name for f in dataclasses.fields(config)
                   if f.name not in SUPPORTED_CONFIG and getattr(config, f.name) != f.default]
    if unsupported:
        raise ValueError(f"distributed training does not implement TrainConfig {unsupported}; train in-process")


# --- the training problem on shared storage ------------------------------------------------------------------


def problem_arrays(items: ItemFeatures, users: UserData, positives: Interactions) -> tuple[dict, dict]:
    """(arrays, meta) of a training problem, for ``rec_assets.artifacts.write_artifact`` or ``save_problem``."""
    arrays = {f"items.{f.name}": getattr(items, f.name) for f in dataclasses.fields(items)
              if f.name != "categorical_width"}
    arrays |= {f"users.{f.name}": getattr(users, f.name) for f in dataclasses.fields(users)
               if f.name != "feature_cardinalities"}
    arrays |= {"positives.user_rows": positives.user_rows, "positives.title_rows": positives.title_rows}
    meta = {"categorical_width": int(items.categorical_width),
            "feature_cardinalities": [int(c) for c in users.feature_cardinalities]}
    return arrays, meta


def save_problem(directory: str | os.PathLike, items: ItemFeatures, users: UserData, positives: Interactions) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays, meta = problem_arrays(items, users, positives)
    for name, array in arrays.items():
        np.save(directory / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
    (directory / "meta.json").write_text(json.dumps(meta))


def load_problem(directory: str | os.PathLike) -> tuple[ItemFeatures, UserData, Interactions]:
    directory = Path(directory)
    meta = json.loads((directory / "meta.json").read_text())

    def load(name: str) -> np.ndarray:
        return np.load(directory / f"{name}.npy", allow_pickle=False)

    items = ItemFeatures(categorical_width=meta["categorical_width"],
                         **{f.name: load(f"items.{f.name}") for f in dataclasses.fields(ItemFeatures)
                            if f.name != "categorical_width"})
    users = UserData(feature_cardinalities=list(meta["feature_cardinalities"]),
                     **{f.name: load(f"users.{f.name}") for f in dataclasses.fields(UserData)
                        if f.name != "feature_cardinalities"})
    return items, users, Interactions(load("positives.user_rows"), load("positives.title_rows"))


# --- the data-parallel loop ----------------------------------------------------------------------------------


class ShardLoss(nn.Module):
    """The towers and the batch loss of ``train.batch_loss`` as one module, so DDP sees one forward per step;
    the sum over the shard's examples times ``scale`` (an empty shard still takes part, with zero loss)."""

    def __init__(self, model: TwoTowerModel):
        super().__init__()
        self.model = model

    def forward(self, batch, scale: float) -> torch.Tensor:
        u = self.model.user_tower(batch.users)
        v = self.model.item_tower(batch.items)
        candidates = v.index_select(0, batch.item_index.reshape(-1)).view(*batch.item_index.shape, -1)
        logits = torch.einsum("pd,pkd->pk", u, candidates)
        labels = torch.zeros_like(logits)
        labels[:, 0] = 1.0
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") * scale


def _wrap(module: nn.Module) -> nn.Module:
    """DDP without per-step buffer syncs: the buffers (ID vocabularies, input statistics) are built identically
    on every rank and never change in training."""
    try:
        return DistributedDataParallel(module, forward_sync_buffers=False)
    except TypeError:  # torch before forward_sync_buffers
        return DistributedDataParallel(module, broadcast_buffers=False)


def _shard(n: int, rank: int, world: int) -> slice:
    """Rank's contiguous share of n rows (the first n % world ranks get one more)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def train_distributed(variant: str, items: ItemFeatures, users: UserData, positives: Interactions,
                      config: TrainConfig = TrainConfig(), on_progress: Callable[[dict], None] | None = None,
                      **model_overrides) -> TrainResult:
    """``train_variant`` across the ranks of the initialised default process group; every rank returns the same
    result (the best validation epoch's weights, on the CPU). Without a process group: one rank."""
    check_supported(config)
    started = time.perf_counter()
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    device = resolve_device(config.device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)

    def all_sum(values: list[float]) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        if world > 1:
            dist.all_reduce(tensor)
        return tensor.tolist()

    model = build_model(variant, items, users, seed=config.seed, **model_overrides)
    positives.validate(users.n_users, items.n_titles)
    rate = config.negative_rate
    model = model.to(device)
    setup = prepare_training(model, items, users, positives, config, device)
    item_inputs, user_inputs, pool, watched = setup.item_inputs, setup.user_inputs, setup.pool, setup.watched
    train_users, train_owners, train_titles = setup.train_users, setup.train_owners, setup.train_titles
    val_users, val_titles, val_negatives = setup.val_users, setup.val_titles, setup.val_negatives
    mine = _shard(len(val_users), rank, world)
    val_tensors = [torch.from_numpy(a[mine]).to(device) for a in (val_users, val_titles, val_negatives)]

    loss_module = ShardLoss(model)
    ddp = _wrap(loss_module) if world > 1 else loss_module

    def validation_loss() -> float:
        if len(val_users) == 0:
            return float("nan")
        model.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(val_tensors[0]), config.batch_size * 4):
                part = slice(start, start + config.batch_size * 4)
                total += float(loss_module(assemble_batch(user_inputs, item_inputs, *(t[part] for t in val_tensors)),
                                           1.0))
        model.train()
        return all_sum([total])[0] / (len(val_users) * (1 + rate))

    optimizer = make_optimizer(model, config)
    rng = np.random.default_rng(setup.epoch_seed)
    history: list[dict] = []

    def report(record: dict) -> None:
        history.append(record)
        if on_progress is not None:
            on_progress(record)

    initial_val = validation_loss()
    best_val, best_epoch, best_state = float("inf"), -1, None
    train_losses, val_losses = [], []
    examples_seen, compute_s, assembly_s, steps_taken = 0, 0.0, 0.0, 0
    chunk = config.batch_size * config.sample_chunk_batches
    n_batches = -(-len(train_users) // config.batch_size)
    epochs_run, epochs_without_gain = 0, 0
    for epoch in range(config.epochs):
        epoch_loss, epoch_examples, step = 0.0, 0, 0
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
                n_global = min(config.batch_size, len(picked) - start)
                shard = _shard(n_global, rank, world)
                part = slice(start + shard.start, start + shard.stop)
                batch = assemble_batch(user_inputs, item_inputs, chunk_users[part], chunk_titles[part],
                                       chunk_negatives[part])
                t1 = time.perf_counter()
                loss = ddp(batch, world / (n_global * (1 + rate)))
                optimizer_step(model, optimizer, loss, config, steps_taken)
                steps_taken += 1
                epoch_loss += float(loss.detach()) * n_global * (1 + rate) / world
                t2 = time.perf_counter()
                assembly_s += t1 - t0
                compute_s += t2 - t1
                epoch_examples += n_global * (1 + rate)
                step += 1
        examples_seen += epoch_examples
        epochs_run += 1
        train_losses.append(all_sum([epoch_loss])[0] / epoch_examples)
        val = validation_loss()
        if len(val_users):
            val_losses.append(val)
        score = val if len(val_users) else -epoch
        if score < best_val - config.min_improvement:
            best_val, best_epoch, epochs_without_gain = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            epochs_without_gain += 1
        report({"event": "epoch", "epoch": epoch, "step": step, "steps_per_epoch": n_batches, "rank": rank,
                "world_size": world, "train_loss": train_losses[-1], "val_loss": val if len(val_users) else None,
                "examples_per_second": examples_seen / max(compute_s + assembly_s, 1e-12)})
        if len(val_users) and epochs_without_gain >= config.patience:
            break

    model.load_state_dict(best_state)
    model = model.cpu().eval()
    return TrainResult(
        model=model, train_loss=train_losses, val_loss=val_losses, initial_val_loss=initial_val,
        best_val_loss=best_val if len(val_users) else float("nan"), best_epoch=best_epoch, epochs_run=epochs_run,
        examples_seen=examples_seen, wall_seconds=time.perf_counter() - started,
        examples_per_second=examples_seen / max(compute_s + assembly_s, 1e-12),
        parameter_count=model.parameter_count(), compute_seconds=compute_s, assembly_seconds=assembly_s,
        device=f"{device} x{world}", history=history,
    )


# --- the torchrun entry point --------------------------------------------------------------------------------


def _pipes():
    """The Dagster Pipes context on rank 0 of a process started through Pipes; a null context otherwise."""
    if int(os.environ.get("RANK", "0")) != 0 or "DAGSTER_PIPES_CONTEXT" not in os.environ:
        return nullcontext(None)
    from dagster_pipes import open_dagster_pipes

    return open_dagster_pipes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problem", required=True, help="training problem directory (load_problem)")
    parser.add_argument("--out", required=True, help="checkpoint path, written by rank 0")
    parser.add_argument("--variant", required=True)
    parser.add_argument("--config", default="{}", help="TrainConfig fields as JSON")
    parser.add_argument("--model", default="{}", help="model overrides (embedding_dim, history_len) as JSON")
    parser.add_argument("--extra", default="{}", help="checkpoint 'extra' metadata as JSON")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads per process (0: torch's default)")
    args = parser.parse_args(argv)

    config = TrainConfig(**json.loads(args.config))
    backend = "nccl" if resolve_device(config.device).type == "cuda" else "gloo"
    if args.threads:
        torch.set_num_threads(args.threads)
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group(backend=backend)
    try:
        with _pipes() as pipes:
            def progress(record: dict) -> None:
                if pipes is not None:
                    pipes.log.info(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in record.items()))

            items, users, positives = load_problem(args.problem)
            result = train_distributed(args.variant, items, users, positives, config, progress,
                                       **json.loads(args.model))
            if int(os.environ.get("RANK", "0")) == 0:
                sha256 = save_checkpoint(args.out, result.model, items.title_ids, train_config=config.to_dict(),
                                         extra={**json.loads(args.extra), "world_size": dist.get_world_size()
                                                if distributed else 1, "backend": backend})
                summary = {
                    "path": args.out, "sha256": sha256, "world_size": dist.get_world_size() if distributed else 1,
                    "backend": backend, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                    "train_loss": result.train_loss, "val_loss": result.val_loss,
                    "initial_val_loss": result.initial_val_loss, "best_val_loss": result.best_val_loss,
                    "examples_seen": result.examples_seen, "wall_seconds": result.wall_seconds,
                    "examples_per_second": result.examples_per_second, "compute_seconds": result.compute_seconds,
                    "assembly_seconds": result.assembly_seconds, "parameter_count": result.parameter_count,
                }
                (Path(args.out).parent / f"{Path(args.out).name}.json").write_text(json.dumps(summary))
                if pipes is not None:
                    pipes.report_asset_materialization(
                        metadata={"path": args.out, "sha256": sha256, "world_size": summary["world_size"],
                                  "backend": backend, "epochs_run": result.epochs_run,
                                  "best_val_loss": result.best_val_loss,
                                  "final_train_loss": result.train_loss[-1] if result.train_loss else None,
                                  "training_examples": result.examples_seen,
                                  "examples_per_second": round(result.examples_per_second, 1),
                                  "wall_seconds": round(result.wall_seconds, 2),
                                  "train_loss": {"raw_value": result.train_loss, "type": "json"},
                                  "val_loss": {"raw_value": result.val_loss, "type": "json"}},
                        data_version=sha256[:24],
                    )
    finally:
        if distributed:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
