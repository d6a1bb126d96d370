"""Training throughput: examples/s, where the time goes, and how close forward+backward runs to plain matmul speed.

    .venv/bin/python -m rec_assets.bench.train_bench --users 4000 --titles 2000 --epochs 1

An example is one scored (user, title) pair (a positive or one of its negatives). The FLOP count is torch's
FlopCounterMode over one forward+backward of a real batch (matmuls, einsums; gathers and the optimizer step cost
no FLOPs there), divided by the batch's examples; the model's FLOP rate is that times the examples trained per
second of forward/backward/step time. The reference rate is a square float32 torch.mm on the same device.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from rec_assets.model.data import (
    Interactions, ItemFeatures, UserData, make_synthetic, sample_negatives,
)
from rec_assets.model.train import TrainConfig, batch_loss, build_batch, prepare_training, resolve_device, train
from rec_assets.model.variants import build_model


@dataclass
class TrainBench:
    variant: str
    device: str
    torch_threads: int
    n_users: int
    n_titles: int
    n_positives: int
    parameter_count: int
    batch_size: int
    negative_rate: int
    epochs_run: int
    examples_seen: int
    examples_per_second: float  # over assembly + compute time
    compute_share: float  # forward, backward, optimizer step
    assembly_share: float  # negative sampling, gathers, transfers
    flops_per_example: float  # forward + backward
    model_flops_per_second: float  # flops_per_example * examples / compute seconds
    matmul_flops_per_second: float
    flop_rate_ratio: float  # model / matmul


def matmul_flops_per_second(device: torch.device, size: int = 1024, seconds: float = 1.0) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.mm(a, b)
    sync()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            torch.mm(a, b)
        runs += 10
        sync()
    return 2.0 * size**3 * runs / (time.perf_counter() - start)


def training_flops_per_example(variant: str, items: ItemFeatures, users: UserData, positives: Interactions,
                               config: TrainConfig, **model_overrides) -> float:
    """Forward + backward FLOPs of one real batch of the first `batch_size` positives, per example."""
    device = resolve_device(config.device)
    model = build_model(variant, items, users, seed=config.seed, **model_overrides).to(device)
    setup = prepare_training(model, items, users, positives, config, device)
    examples = setup.labels.take(np.arange(min(config.batch_size, len(setup.labels))))
    rng = np.random.default_rng(0)
    if config.loss == "sampled_softmax":
        negatives = setup.pool[rng.integers(0, len(setup.pool), size=config.mixed_negatives)]
    else:
        negatives = sample_negatives(rng, examples.owners, config.negative_rate, setup.pool, setup.watched,
                                     items.n_titles)
    batch, n_terms = build_batch(setup, config, examples, negatives, slice(0, len(examples)))
    with FlopCounterMode(display=False) as counter:
        batch_loss(model, batch).backward()
    return counter.get_total_flops() / n_terms


def measure_training(variant: str, items: ItemFeatures, users: UserData, positives: Interactions,
                     config: TrainConfig, **model_overrides) -> TrainBench:
    """Train `variant` with `config` (no early stop needed: set epochs) and measure it."""
    device = resolve_device(config.device)
    result = train(build_model(variant, items, users, seed=config.seed, **model_overrides), items, users, positives,
                   config)
    flops = training_flops_per_example(variant, items, users, positives, config, **model_overrides)
    model_rate = flops * result.examples_seen / max(result.compute_seconds, 1e-12)
    matmul_rate = matmul_flops_per_second(device)
    return TrainBench(
        variant=variant, device=str(device), torch_threads=torch.get_num_threads(), n_users=users.n_users,
        n_titles=items.n_titles, n_positives=len(positives), parameter_count=result.parameter_count,
        batch_size=config.batch_size, negative_rate=config.negative_rate, epochs_run=result.epochs_run,
        examples_seen=result.examples_seen, examples_per_second=result.examples_per_second,
        compute_share=result.compute_share, assembly_share=result.assembly_share, flops_per_example=flops,
        model_flops_per_second=model_rate, matmul_flops_per_second=matmul_rate,
        flop_rate_ratio=model_rate / matmul_rate,
    )


def main(argv: list[str] | None = None) -> TrainBench:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="attention_id")
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--titles", type=int, default=2000)
    parser.add_argument("--history", type=int, default=50)
    parser.add_argument("--positives", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--negative-rate", type=int, default=20)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    problem = make_synthetic(n_users=args.users, n_titles=args.titles, n_cold=args.titles // 10,
                             history_len=args.history, n_positives=args.positives, seed=0)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, negative_rate=args.negative_rate,
                         validation_share=0.0, device=args.device)
    bench = measure_training(args.variant, problem.train_items, problem.train_users, problem.train_positives, config)
    print(json.dumps(asdict(bench), indent=2))
    return bench


if __name__ == "__main__":
    main()
