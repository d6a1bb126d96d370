"""The paper's Table 1 model variants: named configurations of the one model in towers.py.

The random baseline of Table 2 is not a model; evaluation draws it without training anything.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from rec_assets.model.data import ItemFeatures, UserData, item_tensors, title_vocabulary, user_vocabulary
from rec_assets.model.towers import ModelConfig, TwoTowerModel

METADATA = ("categorical", "synopsis", "cover_art")


@dataclass(frozen=True)
class VariantConfig:
    name: str
    item_types: tuple[str, ...]
    fusion: str  # "attention" | "concat"; a single type is plain concatenation
    user_id_embedding: bool = False
    description: str = ""


VARIANTS: dict[str, VariantConfig] = {v.name: v for v in (
    VariantConfig("synopsis", ("synopsis",), "concat", description="synopsis only (Table 1 baseline)"),
    VariantConfig("cover_art", ("cover_art",), "concat", description="cover art only"),
    VariantConfig("categorical", ("categorical",), "concat", description="categorical multi-hot only"),
    VariantConfig("ncf_extension", ("id",), "concat", user_id_embedding=True,
                  description="NCF extension: user-ID embedding joins history and user features; item ID only"),
    VariantConfig("concat_no_id", METADATA, "concat", description="all metadata concatenated, no ID"),
    VariantConfig("attention_no_id", METADATA, "attention", description="all metadata fused by attention, no ID"),
    VariantConfig("concat_id", ("id",) + METADATA, "concat", description="ID and all metadata concatenated"),
    VariantConfig("attention_id", ("id",) + METADATA, "attention", description="ID and all metadata, attention"),
)}


#: attention w/o ID with one metadata type removed: the ablation of ``make compare`` (``--type-ablation``), trained
#: by the comparison only (no graph asset)
ABLATIONS: dict[str, VariantConfig] = {
    f"attention_no_id_without_{t}": VariantConfig(f"attention_no_id_without_{t}", tuple(m for m in METADATA if m != t),
                                                  "attention", description=f"attention w/o ID, {t} removed")
    for t in METADATA
}


def variant_config(name: str) -> VariantConfig:
    """A Table 1 variant or an ablation, by name."""
    found = VARIANTS.get(name) or ABLATIONS.get(name)
    if found is None:
        raise KeyError(f"unknown variant {name!r}; known: {', '.join([*VARIANTS, *ABLATIONS])}")
    return found


def model_config(variant: str | VariantConfig, items: ItemFeatures, users: UserData, **overrides) -> ModelConfig:
    """The ModelConfig of `variant` sized for the training data; `overrides` set any other ModelConfig field
    (embedding_dim, history_len, ...)."""
    v = variant_config(variant) if isinstance(variant, str) else variant
    config = ModelConfig(
        n_id_titles=int(items.id_known.sum()),
        n_id_users=users.n_users,
        categorical_width=items.categorical_width,
        synopsis_dim=items.synopsis.shape[1],
        cover_art_dim=items.cover_art.shape[1],
        user_feature_cardinalities=tuple(users.feature_cardinalities),
        item_types=v.item_types,
        fusion=v.fusion,
        user_id_embedding=v.user_id_embedding,
    )
    return replace(config, **overrides)


def build_model(variant: str | VariantConfig, items: ItemFeatures, users: UserData, seed: int = 0,
                **overrides) -> TwoTowerModel:
    """A freshly initialised model for the training data `items` / `users`, its weights a function of `seed`
    alone (the global torch RNG is left as it was); the dense-input standardisation is fitted to `items`."""
    config = model_config(variant, items, users, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TwoTowerModel(config)
    model.title_vocab.copy_(torch.from_numpy(title_vocabulary(items)))
    model.user_vocab.copy_(torch.from_numpy(user_vocabulary(users)))
    model.item_tower.fit_input_statistics(item_tensors(items, title_vocabulary(items)))
    return model
