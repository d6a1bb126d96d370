"""Cover-art embeddings: a backbone's activations before its classifier (paper section 3.2), one row per title.

The encoders and their weights are in :mod:`rec_assets.features.cover_art_backbone`. Images: torchvision resize
256, centre crop 224 (random weights: 128 unless set), normalised as the weights were trained. Cache:
``<cache_dir>/<cache_tag>/<image sha256>.npy``, written atomically; the tag names encoder, weights, preprocessing
and crop, so switching never mixes vectors. Failures never raise: no, unreadable or undecodable image -> zero
vector, ``missing``, a row in ``failures`` (not cached). Decoding runs in DataLoader workers beside the forward
pass; results repeat run to run (eval mode, fixed batch order), up to 1e-6 CPU rounding when an image shares its
batch with different images.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from rec_assets.features.cover_art_backbone import IMAGENET_MEAN, IMAGENET_STD, Backbone, inference_model, load_backbone
from rec_assets.storage.hashing import file_sha256


REASON_NO_IMAGE = "no image"
REASON_NOT_FOUND = "file not found"
REASON_UNREADABLE = "unreadable"
REASON_UNDECODABLE = "corrupt or undecodable image"
REASON_CHANGED = "file changed while embedding"

#: progress(done, total, images_per_second): done/total count the images being computed (cache hits excluded).
ProgressCallback = Callable[[int, int, float], None]


@dataclass(frozen=True)
class CoverArtConfig:
    # None: efficientnet_lite0, unless ``weights`` names ResNet-34 weights as REC_COVER_WEIGHTS always has.
    encoder: str | None = None  # one of ENCODERS
    weights: str = "auto"  # "auto" (the encoder's own) | "imagenet" | "random" | path to a state dict
    seed: int = 0  # for random weights
    # Centre-crop size fed to the network. None: 224 for trained weights (resize 256, crop 224), and
    # RANDOM_WEIGHTS_RESOLUTION for random ones, which keeps the cover's layout at about a third of the compute.
    resolution: int | None = None
    batch_size: int = 32
    num_workers: int = 2  # decoding processes; 0 decodes in the calling process
    multiprocessing_context: str | None = None  # e.g. "forkserver" where forking a threaded process is unsafe
    device: str = "cpu"
    progress_interval_s: float = 5.0


def backbone_for(config: CoverArtConfig) -> Backbone:
    """:func:`load_backbone` for a configuration."""
    return load_backbone(config.weights, config.seed, config.encoder)


RANDOM_WEIGHTS_RESOLUTION = 128


def resolution_for(config: CoverArtConfig, backbone: Backbone) -> int:
    if config.resolution is not None:
        return int(config.resolution)
    return RANDOM_WEIGHTS_RESOLUTION if backbone.random else 224


def preprocess(resolution: int = 224, mean: tuple[float, ...] = IMAGENET_MEAN,
               std: tuple[float, ...] = IMAGENET_STD) -> Callable[[Image.Image], torch.Tensor]:
    """ImageNet preprocessing: resize the short side to 256, centre crop 224 (both scaled for another crop size),
    tensor, normalise by ``mean`` / ``std``."""
    return transforms.Compose([
        transforms.Resize(round(resolution * 256 / 224), interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(resolution),
        transforms.ToTensor(),
        transforms.Normalize(mean=list(mean), std=list(std)),
    ])


# --------------------------------------------------------------------------------------------------------------------
# Decoding (runs in DataLoader workers)


class _ImageDataset(Dataset):
    """Items ``(path, expected sha256)``; yields ``(position, tensor, failure reason or "")`` and never raises."""

    def __init__(self, items: list[tuple[str, str]], resolution: int = 224, mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD):
        self.items = items
        self.transform = preprocess(resolution, mean, std)
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, position: int) -> tuple[int, torch.Tensor, str]:
        path, expected = self.items[position]
        blank = torch.zeros(3, self.resolution, self.resolution)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            return position, blank, f"{REASON_UNREADABLE}: {type(exc).__name__}: {exc}"
        if hashlib.sha256(data).hexdigest() != expected:
            return position, blank, REASON_CHANGED
        try:
            with Image.open(io.BytesIO(data)) as image:
                rgb = image.convert("RGB")  # forces the full decode: a truncated file fails here
            return position, self.transform(rgb), ""
        except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, DecompressionBomb...)
            return position, blank, f"{REASON_UNDECODABLE}: {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------------------------------------------------
# Cache


def _cache_path(cache_root: Path, digest: str) -> Path:
    return cache_root / f"{digest}.npy"


def _read_cached(path: Path, dim: int) -> np.ndarray | None:
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # absent, empty or damaged: recompute (and overwrite)
    if vector.shape != (dim,) or vector.dtype != np.float32 or not np.isfinite(vector).all():
        return None
    return vector


def _write_cached(path: Path, vector: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with tmp.open("wb") as handle:
            np.save(handle, vector.astype(np.float32, copy=False), allow_pickle=False)
        os.replace(tmp, path)  # atomic on one filesystem
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------------------------
# Embedding


@dataclass
class CoverArtEmbeddings:
    title_ids: np.ndarray  # int64 [n], the row order of the titles frame
    embeddings: np.ndarray  # float32 [n, dim]: 1280 (EfficientNet-Lite0) or 512 (ResNet-34)
    missing: np.ndarray  # bool [n]
    failures: pd.DataFrame  # title_id, image, reason: one row per missing title
    weights_used: str
    cache_tag: str
    n_computed: int  # distinct images embedded by this call
    n_cached: int  # distinct images served from the cache
    stats: dict[str, object] = field(default_factory=dict)
    encoder: str = ""  # the backbone's label, e.g. "efficientnet_lite0"
    weights_sha256: str | None = None  # of the weights file (None for random weights)


def _image_path(cell: object) -> str | None:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)) or cell is pd.NA:
        return None
    text = str(cell)
    return text or None


def embed_cover_art(
    titles: pd.DataFrame,
    config: CoverArtConfig = CoverArtConfig(),
    *,
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    backbone: Backbone | None = None,
) -> CoverArtEmbeddings:
    """Embed the ``image`` of every row of ``titles`` (needs ``title_id`` and ``image``: absolute path or None).

    ``backbone`` lets a caller reuse a loaded network across calls (it must come from :func:`load_backbone`).
    """
    started = time.perf_counter()
    backbone = backbone or backbone_for(config)
    title_ids = titles["title_id"].to_numpy(dtype=np.int64)
    paths = [_image_path(cell) for cell in titles["image"].tolist()]
    n = len(paths)
    embeddings = np.zeros((n, backbone.dim), dtype=np.float32)
    reasons: list[str | None] = [None] * n

    # 1. Hash every image's bytes: the hash is the cache key and detects a file rewritten under the same name.
    digests: list[str | None] = [None] * n
    for i, path in enumerate(paths):
        if path is None:
            reasons[i] = REASON_NO_IMAGE
            continue
        try:
            digests[i] = file_sha256(path)
        except FileNotFoundError:
            reasons[i] = REASON_NOT_FOUND
        except OSError as exc:
            reasons[i] = f"{REASON_UNREADABLE}: {type(exc).__name__}: {exc}"
    hashed_at = time.perf_counter()

    # 2. Serve what the cache has; queue each other distinct image once, in first-appearance order.
    resolution = resolution_for(config, backbone)
    cache_tag = f"{backbone.cache_tag}-r{resolution}"
    cache_root = Path(cache_dir) / cache_tag if cache_dir is not None else None
    vectors: dict[str, np.ndarray] = {}
    failed: dict[str, str] = {}
    to_compute: list[tuple[str, str]] = []
    queued: set[str] = set()
    n_cached = 0
    for path, digest in zip(paths, digests):
        if digest is None or digest in vectors or digest in queued:
            continue
        cached = _read_cached(_cache_path(cache_root, digest), backbone.dim) if cache_root is not None else None
        if cached is not None:
            vectors[digest] = cached
            n_cached += 1
        else:
            to_compute.append((path, digest))
            queued.add(digest)

    # 3. Decode in workers, forward in this process, write each new vector to the cache.
    n_computed, forward_s = 0, 0.0
    total = len(to_compute)
    if total:
        device = torch.device(config.device)
        model = inference_model(backbone.model).to(device)
        n_batches = math.ceil(total / config.batch_size)
        workers = min(config.num_workers, n_batches)
        loader = DataLoader(
            _ImageDataset(to_compute, resolution, backbone.mean, backbone.std),
            batch_size=config.batch_size,
            shuffle=False,
            num_workers=workers,
            multiprocessing_context=config.multiprocessing_context if workers > 0 else None,
            pin_memory=device.type == "cuda",
        )
        compute_started = last_report = time.perf_counter()
        done = 0
        with torch.inference_mode():
            for positions, batch, batch_reasons in loader:
                ok = [j for j, reason in enumerate(batch_reasons) if not reason]
                for j, reason in enumerate(batch_reasons):
                    if reason:
                        failed[to_compute[int(positions[j])][1]] = reason
                if ok:
                    forward_started = time.perf_counter()
                    output = model(batch[ok].to(device, non_blocking=True)).float().cpu().numpy()
                    forward_s += time.perf_counter() - forward_started
                    for row, j in enumerate(ok):
                        digest = to_compute[int(positions[j])][1]
                        vectors[digest] = np.ascontiguousarray(output[row], dtype=np.float32)
                        if cache_root is not None:
                            _write_cached(_cache_path(cache_root, digest), vectors[digest])
                    n_computed += len(ok)
                done += len(batch_reasons)
                now = time.perf_counter()
                if progress is not None and now - last_report >= config.progress_interval_s:
                    progress(done, total, done / max(now - compute_started, 1e-9))
                    last_report = now
        compute_s = time.perf_counter() - compute_started
        if progress is not None:
            progress(done, total, done / max(compute_s, 1e-9))
    else:
        compute_s = 0.0

    # 4. Assemble one row per title.
    for i, digest in enumerate(digests):
        if digest is None:
            continue
        if digest in vectors:
            embeddings[i] = vectors[digest]
        else:
            reasons[i] = failed.get(digest, REASON_UNDECODABLE)
    missing = np.array([r is not None for r in reasons], dtype=bool)
    failures = pd.DataFrame(
        {
            "title_id": title_ids[missing],
            "image": [paths[i] for i in np.flatnonzero(missing)],
            "reason": [reasons[i] for i in np.flatnonzero(missing)],
        }
    )
    elapsed = time.perf_counter() - started
    stats: dict[str, object] = {
        "n_titles": n,
        "n_missing": int(missing.sum()),
        "n_unique_images": len(vectors) + len(failed),
        "n_computed": n_computed,
        "n_cached": n_cached,
        "n_failed_images": len(failed),
        "hash_seconds": round(hashed_at - started, 3),
        "compute_seconds": round(compute_s, 3),
        "forward_seconds": round(forward_s, 3),
        "total_seconds": round(elapsed, 3),
        "images_per_second": round(n_computed / compute_s, 2) if compute_s > 0 else None,
        "encoder": backbone.encoder,
        "weights_used": backbone.weights_used,
        "weights_sha256": backbone.weights_sha256,
        "embedding_dim": backbone.dim,
        "cache_tag": cache_tag,
        "resolution": resolution,
        "batch_size": config.batch_size,
        "num_workers": config.num_workers,
        "torch_threads": torch.get_num_threads(),
    }
    return CoverArtEmbeddings(
        title_ids=title_ids, embeddings=embeddings, missing=missing, failures=failures,
        weights_used=backbone.weights_used, cache_tag=cache_tag, n_computed=n_computed, n_cached=n_cached, stats=stats,
        encoder=backbone.encoder, weights_sha256=backbone.weights_sha256,
    )
