"""Data-parallel training with torch.distributed DistributedDataParallel, launched by torchrun (pure torch code).

The one loop of ``rec_assets.model.train.train`` with this rank and world size: one shard of each global batch per
rank, gradients all-reduced, every draw identical on every rank, so the weights equal single-process training up
to summation order (``gloo`` on CPU, ``nccl`` on GPU). Normally run through Dagster Pipes, which rank 0 reports
its checkpoint to (``rec_assets/defs/distributed.py``)::

    torchrun --standalone --nproc_per_node 2 -m rec_assets.model.distributed \\
        --problem <training problem dir> --out <checkpoint.pt> --variant attention_id --config '{"epochs": 6}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist

from rec_assets.model.checkpoint import save_checkpoint
from rec_assets.model.data import Interactions, ItemFeatures, UserData
from rec_assets.model.train import TrainConfig, TrainResult, resolve_device, train_variant

# --- the training problem on shared storage ------------------------------------------------------------------


def problem_arrays(items: ItemFeatures, users: UserData, positives: Interactions) -> tuple[dict, dict]:
    """(arrays, meta) of a training problem, for ``rec_assets.storage.artifacts.write_artifact`` or ``save_problem``."""
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


def train_distributed(variant: str, items: ItemFeatures, users: UserData, positives: Interactions,
                      config: TrainConfig = TrainConfig(), on_progress: Callable[[dict], None] | None = None,
                      **model_overrides) -> TrainResult:
    """``train_variant`` across the ranks of the initialised default process group (the one loop of
    ``model.train`` with this process's rank and the group's world size); every rank returns the same result.
    Without a group: one rank."""
    if resolve_device(config.device).type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    grouped = dist.is_initialized()
    return train_variant(variant, items, users, positives, config, on_progress,
                         rank=dist.get_rank() if grouped else 0, world_size=dist.get_world_size() if grouped else 1,
                         **model_overrides)


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
