"""Checkpoints (atomic save, weights-only load, sha256 of the file) and the embeddings scoring reads.

A checkpoint is one torch file holding plain types and tensors only, so `torch.load(weights_only=True)` can
read it: the state dict (ID vocabularies included), the model config, the training config, the title_ids row
order of the training features, and whatever `extra` metadata the caller adds (variant name, week, ...).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from rec_assets.faults import crash_point
from rec_assets.model.data import ItemFeatures, UserData, item_tensors, user_tensors
from rec_assets.model.towers import ModelConfig, TwoTowerModel
from rec_assets.storage.hashing import file_sha256

FORMAT_VERSION = 2  # 2: input standardisation buffers and per-type LayerNorms in the item tower


def save_checkpoint(path: str | os.PathLike, model: TwoTowerModel, title_ids: np.ndarray,
                    train_config: dict | None = None, extra: dict | None = None) -> str:
    """Write the checkpoint to `path` atomically (temp file in the same folder, fsync, rename); return the
    sha256 of the written file. `title_ids` is the row order of the training ItemFeatures."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "train_config": dict(train_config or {}),
        "extra": dict(extra or {}),
        "title_ids": torch.as_tensor(np.asarray(title_ids, dtype=np.int64)),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        digest = file_sha256(tmp)
        crash_point("checkpoint")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return digest


@dataclass
class LoadedCheckpoint:
    model: TwoTowerModel  # in eval mode, on the CPU
    model_config: ModelConfig
    train_config: dict
    extra: dict
    title_ids: np.ndarray  # training row order
    sha256: str


def load_checkpoint(path: str | os.PathLike) -> LoadedCheckpoint:
    digest = file_sha256(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format {payload.get('format_version')!r}, expected {FORMAT_VERSION}")
    config = ModelConfig.from_dict(payload["model_config"])
    model = TwoTowerModel(config)
    model.load_state_dict(payload["state_dict"])
    return LoadedCheckpoint(model.eval(), config, payload["train_config"], payload["extra"],
                            payload["title_ids"].numpy(), digest)


def _device_of(model: TwoTowerModel) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def iter_user_embeddings(model: TwoTowerModel, users: UserData, items: ItemFeatures,
                         batch_size: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(user rows, embeddings [len(rows), embedding_dim] float32) for `batch_size` users at a time, so a scorer
    can rank each chunk against the item embeddings with memory bounded by the chunk. `items` are the features
    whose rows `users.history_items` refer to (the scoring week's, for X')."""
    model.eval()
    users.validate(items.n_titles)
    device = _device_of(model)
    title_vocab, user_vocab = model.title_vocab.cpu().numpy(), model.user_vocab.cpu().numpy()
    for start in range(0, users.n_users, batch_size):
        rows = np.arange(start, min(start + batch_size, users.n_users))
        inputs = user_tensors(users, items, title_vocab, user_vocab, model.config.history_len, rows=rows,
                              device=device, validate=False)
        yield rows, model.user_tower(inputs).float().cpu().numpy()


def embed_users(model: TwoTowerModel, users: UserData, items: ItemFeatures, batch_size: int = 8192) -> np.ndarray:
    """User embeddings [n_users, embedding_dim] float32, in `users` row order, computed `batch_size` users at a
    time (see iter_user_embeddings to avoid holding them all)."""
    out = np.empty((users.n_users, model.config.embedding_dim), dtype=np.float32)
    for rows, embeddings in iter_user_embeddings(model, users, items, batch_size):
        out[rows] = embeddings
    return out


@torch.no_grad()
def embed_items(model: TwoTowerModel, items: ItemFeatures, batch_size: int = 65536) -> np.ndarray:
    """Item embeddings [n_titles, embedding_dim] float32, in `items` row order; titles with id_known false (or
    unknown to the model) are embedded from their metadata alone."""
    model.eval()
    inputs = item_tensors(items, model.title_vocab.cpu().numpy(), _device_of(model))
    device = inputs.id_rows.device
    parts = [model.item_tower(inputs.take(torch.arange(start, min(start + batch_size, len(inputs)), device=device)))
             for start in range(0, len(inputs), batch_size)]
    return torch.cat(parts).float().cpu().numpy()


@torch.no_grad()
def attention_weights(model: TwoTowerModel, items: ItemFeatures) -> tuple[np.ndarray, list[str]]:
    """(alpha [n_titles, n_types], type names): the item tower's fusion weights per title; each row sums to one
    over the types the title has, 0 for a missing type. Raises ValueError for a concatenation variant."""
    model.eval()
    inputs = item_tensors(items, model.title_vocab.cpu().numpy(), _device_of(model))
    weights = model.item_tower.attention_weights(inputs)
    return weights.cpu().numpy(), list(model.item_tower.type_names)


def scores(model: TwoTowerModel, users: UserData, items: ItemFeatures, batch_size: int = 8192) -> np.ndarray:
    """sigmoid(u . i) for every user x title [n_users, n_titles]; for small problems and tests (scoring at scale
    ranks per user chunk from embed_users / embed_items instead)."""
    u = embed_users(model, users, items, batch_size)
    v = embed_items(model, items)
    return torch.sigmoid(torch.from_numpy(u @ v.T)).numpy()
