"""Cover-art embeddings: ResNet-34 activations before the last layer, 512 floats per image (paper section 3.2).

The network is torchvision's ``resnet34`` with ``fc`` replaced by the identity, in eval mode under
``torch.inference_mode()``; images go through ``ResNet34_Weights.IMAGENET1K_V1.transforms()`` (resize 256, centre crop
224, ImageNet mean/std) whatever the weights, so that random or fine-tuned weights see what ImageNet weights would.

Weights (``CoverArtConfig.weights``):

- ``"imagenet"``: torchvision's IMAGENET1K_V1, read from the torch hub cache only (never downloaded here: the
  platform must run offline); absent -> ``FileNotFoundError`` saying where to put the file.
- ``"auto"`` (default): ImageNet when the cache holds it, else seeded random weights, with a logged warning.
- ``"random"``: random initialisation under ``torch.manual_seed(seed)``; deterministic for a given torch version.
- any other string: a path to a state dict (a whole-ResNet-34 one, ``fc.*`` keys ignored, or one without ``fc``).

:attr:`CoverArtEmbeddings.weights_used` says which produced the embeddings, e.g. ``"random(seed=0)"``,
``"imagenet:IMAGENET1K_V1"`` or ``"file:/path (sha256=...)"``.

Cache: with a ``cache_dir``, each embedding is stored as ``<cache_dir>/<cache_tag>/<sha256 of the image bytes>.npy``
(written to a temporary file then renamed, so readers never see half a file). The tag identifies the weights (and,
for random weights, the torch version, whose initialisation code decides the values), so changing weights never
serves stale vectors; a week re-run embeds only images whose bytes it has not seen. Two titles with the same image
bytes are embedded once.

Failures never raise: no image, a missing file, an unreadable one, one that does not decode, or one whose bytes
changed between hashing and decoding, give a zero vector, ``missing = True`` and a row in ``failures`` (title and
reason). Failures are not cached.

Throughput: decoding and preprocessing run in DataLoader worker processes (``num_workers``), which prefetch the next
batches while the main process runs the forward pass. Results are identical from run to run on the same machine
(eval mode, fixed batch order); the CPU kernels may round differently when an image shares its batch with different
images (e.g. a week where some images came from the cache), at the 1e-6 level.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.models import ResNet34_Weights, resnet34

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 512
IMAGENET_WEIGHTS = ResNet34_Weights.IMAGENET1K_V1
# Bump when preprocessing changes: it is part of every cache tag, so old vectors are not served.
PREPROCESSING_VERSION = 1

REASON_NO_IMAGE = "no image"
REASON_NOT_FOUND = "file not found"
REASON_UNREADABLE = "unreadable"
REASON_UNDECODABLE = "corrupt or undecodable image"
REASON_CHANGED = "file changed while embedding"

#: progress(done, total, images_per_second): done/total count the images being computed (cache hits excluded).
ProgressCallback = Callable[[int, int, float], None]


@dataclass(frozen=True)
class CoverArtConfig:
    weights: str = "auto"  # "auto" | "imagenet" | "random" | path to a state dict
    seed: int = 0  # for random weights
    # Centre-crop size fed to the network. None: ImageNet weights (and a state dict, assumed ImageNet-trained) use
    # their own preprocessing (resize 256, crop 224); random weights have no preprocessing of their own and use
    # RANDOM_WEIGHTS_RESOLUTION, which keeps the cover's layout at about a third of the compute.
    resolution: int | None = None
    batch_size: int = 32
    num_workers: int = 2  # decoding processes; 0 decodes in the calling process
    multiprocessing_context: str | None = None  # e.g. "forkserver" where forking a threaded process is unsafe
    device: str = "cpu"
    progress_interval_s: float = 5.0


@dataclass(frozen=True)
class Backbone:
    model: nn.Module
    weights_used: str  # what a person reads
    cache_tag: str  # the same identity, safe as a directory name


# --------------------------------------------------------------------------------------------------------------------
# Weights


def imagenet_checkpoint_path() -> Path:
    """Where torchvision keeps (and where this module looks for) the ImageNet ResNet-34 weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(IMAGENET_WEIGHTS.url).path).name


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _headless(model: nn.Module) -> nn.Module:
    model.fc = nn.Identity()
    return model.eval()


def _load_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    # Accept a whole-classifier state dict (its fc is 1000-way, or any width) as well as a headless one.
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    model = _headless(model)
    model.load_state_dict(state, strict=True)
    return model


def _random_backbone(seed: int) -> Backbone:
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state untouched
        torch.manual_seed(seed)
        model = resnet34(weights=None)
    torch_version = re.sub(r"[^A-Za-z0-9.]+", "_", torch.__version__)
    return Backbone(_headless(model), f"random(seed={seed})", f"random-seed{seed}-torch{torch_version}")


def _imagenet_backbone() -> Backbone:
    path = imagenet_checkpoint_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for ResNet-34 are not in the torch hub cache: expected {path}. This machine does not "
            f"download them: fetch {IMAGENET_WEIGHTS.url} elsewhere and copy it there (or set TORCH_HOME), "
            "or use weights='random' / 'auto' / a state-dict path."
        )
    # torchvision names the file after the first hex digits of its sha256: check them, as torch.hub would.
    expected_prefix = re.search(r"-([0-9a-f]+)\.", path.name)
    if expected_prefix and not _sha256_file(path).startswith(expected_prefix.group(1)):
        raise ValueError(f"{path} does not match its published sha256 prefix {expected_prefix.group(1)}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = _load_state_dict(resnet34(weights=None), state)
    return Backbone(model, "imagenet:IMAGENET1K_V1", "imagenet-IMAGENET1K_V1")


def _file_backbone(path: Path) -> Backbone:
    if not path.is_file():
        raise FileNotFoundError(f"cover-art weights file not found: {path}")
    digest = _sha256_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    model = _load_state_dict(resnet34(weights=None), state)
    return Backbone(model, f"file:{path} (sha256={digest})", f"file-{digest[:16]}")


def load_backbone(weights: str = "auto", seed: int = 0) -> Backbone:
    """The headless ResNet-34 in eval mode, and which weights it carries (see the module docstring)."""
    if weights == "random":
        backbone = _random_backbone(seed)
    elif weights == "imagenet":
        backbone = _imagenet_backbone()
    elif weights == "auto":
        if imagenet_checkpoint_path().is_file():
            backbone = _imagenet_backbone()
        else:
            logger.warning(
                "ImageNet ResNet-34 weights not found at %s; cover-art embeddings use RANDOM weights (seed=%d), "
                "which carry no visual semantics",
                imagenet_checkpoint_path(),
                seed,
            )
            backbone = _random_backbone(seed)
    else:
        backbone = _file_backbone(Path(weights))
    tag = f"{backbone.cache_tag}-p{PREPROCESSING_VERSION}"
    return Backbone(backbone.model, backbone.weights_used, tag)


RANDOM_WEIGHTS_RESOLUTION = 128


def resolution_for(config: CoverArtConfig, backbone: Backbone) -> int:
    if config.resolution is not None:
        return int(config.resolution)
    return RANDOM_WEIGHTS_RESOLUTION if backbone.weights_used.startswith("random") else 224


def preprocess(resolution: int = 224) -> Callable[[Image.Image], torch.Tensor]:
    """The ImageNet weights' own preprocessing (resize 256, centre crop 224, ImageNet normalisation), scaled to
    ``resolution`` when another crop size is asked for."""
    if resolution == 224:
        return IMAGENET_WEIGHTS.transforms()
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(round(resolution * 256 / 224)),
        transforms.CenterCrop(resolution),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])


# --------------------------------------------------------------------------------------------------------------------
# Decoding (runs in DataLoader workers)


class _ImageDataset(Dataset):
    """Items ``(path, expected sha256)``; yields ``(position, tensor, failure reason or "")`` and never raises."""

    def __init__(self, items: list[tuple[str, str]], resolution: int = 224):
        self.items = items
        self.transform = preprocess(resolution)
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


def _read_cached(path: Path) -> np.ndarray | None:
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # absent, empty or damaged: recompute (and overwrite)
    if vector.shape != (EMBEDDING_DIM,) or vector.dtype != np.float32 or not np.isfinite(vector).all():
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
    embeddings: np.ndarray  # float32 [n, 512]
    missing: np.ndarray  # bool [n]
    failures: pd.DataFrame  # title_id, image, reason: one row per missing title
    weights_used: str
    cache_tag: str
    n_computed: int  # distinct images embedded by this call
    n_cached: int  # distinct images served from the cache
    stats: dict[str, object] = field(default_factory=dict)


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
    backbone = backbone or load_backbone(config.weights, config.seed)
    title_ids = titles["title_id"].to_numpy(dtype=np.int64)
    paths = [_image_path(cell) for cell in titles["image"].tolist()]
    n = len(paths)
    embeddings = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
    reasons: list[str | None] = [None] * n

    # 1. Hash every image's bytes: the hash is the cache key and detects a file rewritten under the same name.
    digests: list[str | None] = [None] * n
    for i, path in enumerate(paths):
        if path is None:
            reasons[i] = REASON_NO_IMAGE
            continue
        try:
            digests[i] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
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
        cached = _read_cached(_cache_path(cache_root, digest)) if cache_root is not None else None
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
        model = backbone.model.to(device)
        n_batches = math.ceil(total / config.batch_size)
        workers = min(config.num_workers, n_batches)
        loader = DataLoader(
            _ImageDataset(to_compute, resolution),
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
        "weights_used": backbone.weights_used,
        "cache_tag": cache_tag,
        "resolution": resolution,
        "batch_size": config.batch_size,
        "num_workers": config.num_workers,
        "torch_threads": torch.get_num_threads(),
    }
    return CoverArtEmbeddings(
        title_ids=title_ids,
        embeddings=embeddings,
        missing=missing,
        failures=failures,
        weights_used=backbone.weights_used,
        cache_tag=cache_tag,
        n_computed=n_computed,
        n_cached=n_cached,
        stats=stats,
    )
