"""Throughput of ``evaluation.scoring.top_k`` against a bare chunked matrix product + ``torch.topk``.

Both sides score the same random embeddings in the same user chunks; the difference is what ``top_k`` adds:
candidate gathering, exclusion of watched titles, the boundary-tie pass and the deterministic in-list order.
Throughput is user-title pairs scored per second (n_users x n_items / seconds).

    .venv/bin/python -m rec_assets.bench.scoring_bench --users 100000 --items 20000 --dim 512

Pure code: no dagster import.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from rec_assets.evaluation.metrics import DEFAULT_TOP_K
from rec_assets.evaluation.scoring import CSR, top_k


def _bare_top_k(user_emb: torch.Tensor, item_emb: torch.Tensor, k: int, chunk_users: int) -> torch.Tensor:
    """The floor: one product and one topk per chunk, nothing else."""
    item_t = item_emb.T.contiguous()
    out = torch.empty((user_emb.shape[0], k), dtype=torch.int64)
    for start in range(0, user_emb.shape[0], chunk_users):
        out[start : start + chunk_users] = torch.topk(user_emb[start : start + chunk_users] @ item_t, k, dim=1).indices
    return out


def bench_top_k(
    n_users: int = 100_000,
    n_items: int = 20_000,
    dim: int = 512,
    k: int = DEFAULT_TOP_K,
    chunk_users: int = 4096,
    watched_per_user: int = 50,
    seed: int = 0,
    repeats: int = 1,
) -> dict[str, float | int]:
    """Time ``top_k`` (with ``watched_per_user`` exclusions per user) and the bare product + topk; best of repeats.

    Returns sizes, seconds and pairs per second of both, and the overhead ratio (top_k seconds / bare seconds).
    """
    gen = torch.Generator().manual_seed(seed)
    user_emb = torch.randn(n_users, dim, generator=gen) / dim**0.5
    item_emb = torch.randn(n_items, dim, generator=gen) / dim**0.5
    rng = np.random.default_rng(seed)
    watched = rng.integers(0, n_items, size=n_users * watched_per_user)
    exclude = CSR.from_pairs(np.repeat(np.arange(n_users), watched_per_user), watched, n_users)

    # Interleaved best-of-repeats: on a shared machine both sides then see the same background load.
    bare_s = ours_s = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            _bare_top_k(user_emb, item_emb, k, chunk_users)
            bare_s = min(bare_s, time.perf_counter() - t0)
            t0 = time.perf_counter()
            top_k(user_emb, item_emb, k, exclude, chunk_users=chunk_users)
            ours_s = min(ours_s, time.perf_counter() - t0)
    pairs = n_users * n_items
    return {
        "n_users": n_users,
        "n_items": n_items,
        "dim": dim,
        "k": k,
        "chunk_users": chunk_users,
        "exclusions": int(exclude.indices.size),
        "threads": torch.get_num_threads(),
        "top_k_s": ours_s,
        "bare_s": bare_s,
        "top_k_pairs_per_s": pairs / ours_s,
        "bare_pairs_per_s": pairs / bare_s,
        "overhead": ours_s / bare_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=DEFAULT_TOP_K)
    parser.add_argument("--chunk-users", type=int, default=4096)
    parser.add_argument("--watched", type=int, default=50, help="exclusions per user")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(bench_top_k(args.users, args.items, args.dim, args.k, args.chunk_users, args.watched,
                                 repeats=args.repeats), indent=2))


if __name__ == "__main__":
    main()
