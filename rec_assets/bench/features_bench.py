"""Feature benchmarks: cover-art images/second end-to-end vs the bare ResNet-34 forward pass, and synopsis time.

Plain functions returning dicts of figures, for the benchmark runner. Inputs are generated (seeded), so the figures
measure the code, not a data set: JPEG covers of poster size, and synopses drawn from a Zipf-distributed vocabulary
of made-up words with a realistic length (20-80 words).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from rec_assets.features.cover_art import Backbone, CoverArtConfig, embed_cover_art, load_backbone
from rec_assets.features.synopsis import SynopsisConfig, embed_synopses


def generate_cover_images(directory: str | Path, n: int, seed: int = 0, size: tuple[int, int] = (300, 450)) -> list[Path]:
    """``n`` JPEG covers (width x height ``size``): smooth colour gradients plus noise, so they compress like photos."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for i in range(n):
        base = rng.uniform(0, 255, size=3)
        slope = rng.uniform(-0.5, 0.5, size=(2, 3))
        pixels = base + xs[..., None] * slope[0] + ys[..., None] * slope[1]
        pixels += rng.normal(0, 12, size=pixels.shape)
        path = directory / f"cover_{i:05d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=85)
        paths.append(path)
    return paths


def generate_synopses(n: int, seed: int = 0, vocabulary_size: int = 20_000, words: tuple[int, int] = (20, 80)) -> list[str]:
    """``n`` synopses of ``words`` words drawn from a Zipf(1.1)-like distribution over made-up words."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = ["".join(rng.choice(letters, size=rng.integers(2, 10))) for _ in range(vocabulary_size)]
    ranks = np.arange(1, vocabulary_size + 1)
    probabilities = 1.0 / ranks**1.1
    probabilities /= probabilities.sum()
    lengths = rng.integers(words[0], words[1] + 1, size=n)
    draws = rng.choice(vocabulary_size, size=int(lengths.sum()), p=probabilities)
    out, start = [], 0
    for length in lengths:
        out.append(" ".join(vocabulary[j] for j in draws[start : start + length]).capitalize() + ".")
        start += length
    return out


def bench_bare_forward(backbone: Backbone, n_images: int, batch_size: int = 32, warmup_batches: int = 1) -> dict:
    """ResNet-34 forward alone on random [batch, 3, 224, 224] tensors: the ceiling for end-to-end throughput."""
    generator = torch.Generator().manual_seed(0)
    n_batches = math.ceil(n_images / batch_size)
    batches = [torch.randn(min(batch_size, n_images - k * batch_size), 3, 224, 224, generator=generator)
               for k in range(n_batches)]
    with torch.inference_mode():
        for _ in range(warmup_batches):
            backbone.model(batches[0])
        started = time.perf_counter()
        for batch in batches:
            backbone.model(batch)
        seconds = time.perf_counter() - started
    return {"images": n_images, "batch_size": batch_size, "seconds": round(seconds, 3),
            "images_per_second": round(n_images / seconds, 2)}


def bench_cover_art(
    image_paths: list[str | Path],
    *,
    batch_size: int = 32,
    num_workers: tuple[int, ...] = (0, 2),
    weights: str = "random",
    threads: int | None = 2,
) -> dict:
    """End-to-end :func:`embed_cover_art` (hash, decode, preprocess, forward, cache write; nothing cached at the start)
    for each ``num_workers``, a second fully cached call, and the bare forward pass on the same batch size."""
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        started = time.perf_counter()
        backbone = load_backbone(weights)
        load_seconds = time.perf_counter() - started
        titles = pd.DataFrame({"title_id": np.arange(len(image_paths), dtype=np.int64),
                               "image": [str(p) for p in image_paths]})
        bare = bench_bare_forward(backbone, len(image_paths), batch_size)
        end_to_end = {}
        cached = {}
        for workers in num_workers:
            config = CoverArtConfig(weights=weights, batch_size=batch_size, num_workers=workers)
            with tempfile.TemporaryDirectory() as cache_dir:
                started = time.perf_counter()
                result = embed_cover_art(titles, config, cache_dir=cache_dir, backbone=backbone)
                seconds = time.perf_counter() - started
                end_to_end[f"num_workers={workers}"] = {
                    "seconds": round(seconds, 3),
                    "images_per_second": round(len(image_paths) / seconds, 2),
                    "forward_seconds": result.stats["forward_seconds"],
                    "n_computed": result.n_computed,
                    "n_missing": int(result.missing.sum()),
                    "fraction_of_bare_forward": round(len(image_paths) / seconds / bare["images_per_second"], 3),
                }
                started = time.perf_counter()
                again = embed_cover_art(titles, config, cache_dir=cache_dir, backbone=backbone)
                seconds = time.perf_counter() - started
                cached = {"seconds": round(seconds, 3), "images_per_second": round(len(image_paths) / seconds, 1),
                          "n_cached": again.n_cached, "n_computed": again.n_computed}
        return {
            "n_images": len(image_paths),
            "weights_used": backbone.weights_used,
            "torch_threads": torch.get_num_threads(),
            "model_load_seconds": round(load_seconds, 3),
            "bare_forward": bare,
            "end_to_end": end_to_end,
            "all_cached_rerun": cached,
        }
    finally:
        torch.set_num_threads(previous_threads)


def bench_synopsis(synopses: list[str], config: SynopsisConfig = SynopsisConfig()) -> dict:
    """Wall time of :func:`embed_synopses` (tokenise, TF-IDF fit, word2vec training, weighted sum) on ``synopses``."""
    titles = pd.DataFrame({"title_id": np.arange(len(synopses), dtype=np.int64), "synopsis": synopses})
    started = time.perf_counter()
    result = embed_synopses(titles, config)
    seconds = time.perf_counter() - started
    return {
        "n_synopses": len(synopses),
        "n_tokens": result.stats["n_tokens"],
        "seconds": round(seconds, 3),
        "synopses_per_second": round(len(synopses) / seconds, 1),
        "vocabulary_size": result.stats["vocabulary_size"],
        "oov_token_rate": round(float(result.stats["oov_token_rate"]), 4),
        "vectors_used": result.vectors_used,
    }


def run_features_bench(
    workdir: str | Path, n_images: int = 200, n_synopses: int = 20_000, threads: int = 2, num_workers: tuple[int, ...] = (0, 2)
) -> dict:
    """Everything above on generated inputs under ``workdir``; returns ``{"cover_art": ..., "synopsis": ...}``."""
    images = generate_cover_images(Path(workdir) / "covers", n_images)
    return {
        "cover_art": bench_cover_art(images, num_workers=num_workers, threads=threads),
        "synopsis": bench_synopsis(generate_synopses(n_synopses)),
    }
