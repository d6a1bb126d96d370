"""The two-tower model of the paper, section 3: a user tower, an item tower, score = sigmoid(u . i).

User tower: the last L watched titles (their own history-item embedding, position embedding, attention pooling),
user features and, in the NCF variant, a user-ID embedding -> three residual blocks. Item tower: one
layer-normalised embedding per metadata type (ID, categorical, synopsis, cover art), fused by attention or
concatenation, then a one-layer perceptron. A missing type contributes a zero vector masked out of the fusion, so
a cold title is represented by its metadata alone. Dense inputs are standardised with training statistics kept in
the state dict (`fit_input_statistics`). Why each choice: docs/design.md, "The two-tower model".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rec_assets.model.data import ItemTensors, UserTensors

ITEM_TYPES = ("id", "categorical", "synopsis", "cover_art")
FUSIONS = ("attention", "concat")


@dataclass(frozen=True)
class ModelConfig:
    n_id_titles: int  # title vocabulary: titles with an event in the training period
    n_id_users: int  # user vocabulary (only the NCF variant embeds user IDs)
    categorical_width: int
    synopsis_dim: int
    cover_art_dim: int
    user_feature_cardinalities: tuple[int, ...]
    item_types: tuple[str, ...] = ITEM_TYPES
    fusion: str = "attention"
    user_id_embedding: bool = False
    embedding_dim: int = 512  # size of u and i before the dot product (paper: 512)
    modality_dim: int = 64  # common width of every metadata-type embedding
    attention_dim: int = 64  # width of P h + b in both attention layers
    history_len: int = 50
    history_dim: int = 64
    user_feature_dim: int = 16  # per categorical user field
    user_feature_hidden_dim: int = 64  # output of the user-feature MLP
    user_hidden_dim: int = 256  # width of the residual blocks
    n_residual_blocks: int = 3
    # initial std of the logit u . i for layer-normalised tower inputs: each output layer is initialised to give
    # u, i entries of std sqrt(init_logit_std / sqrt(embedding_dim)), independent of the embedding width
    init_logit_std: float = 1.0
    # std of every embedding table at initialisation. Each table feeds a LayerNorm, so its scale does not change
    # the function, only how far one Adam step (~learning_rate per entry) turns it: with N(0, 1) tables a few
    # hundred steps barely move an ID embedding
    embedding_init_std: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_types", tuple(self.item_types))
        object.__setattr__(self, "user_feature_cardinalities", tuple(int(c) for c in self.user_feature_cardinalities))
        unknown = set(self.item_types) - set(ITEM_TYPES)
        if not self.item_types or unknown:
            raise ValueError(f"item_types must be a non-empty subset of {ITEM_TYPES}, got {self.item_types}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")

    def to_dict(self) -> dict:
        """Plain types only, so a checkpoint loads with torch.load(weights_only=True)."""
        d = asdict(self)
        d["item_types"] = list(self.item_types)
        d["user_feature_cardinalities"] = list(self.user_feature_cardinalities)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**d)


def masked_softmax(scores: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim restricted to `present`; a row with nothing present gets all zeros.
    A large finite fill (not -inf) keeps an all-masked row free of NaN in the forward and backward pass."""
    weights = torch.softmax(scores.masked_fill(~present, torch.finfo(scores.dtype).min), dim=-1)
    return weights * present


class AdditiveAttention(nn.Module):
    """Pre-scores O_m = z^T tanh(P h_m + b) for a set of vectors h_m [..., M, d] -> [..., M]."""

    def __init__(self, dim: int, attention_dim: int):
        super().__init__()
        self.P = nn.Linear(dim, attention_dim)  # weight P, bias b
        self.z = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.z(torch.tanh(self.P(h))).squeeze(-1)


def init_output(layer: nn.Linear, c: ModelConfig) -> None:
    """Initialise a tower's last layer so that, for inputs of unit variance per entry, each output entry has
    variance init_logit_std / sqrt(embedding_dim); the dot product of two such towers then has std ~init_logit_std."""
    gain = (c.init_logit_std / c.embedding_dim ** 0.5) ** 0.5
    nn.init.normal_(layer.weight, std=gain / layer.in_features ** 0.5)
    nn.init.zeros_(layer.bias)


class ResidualBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim)
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.relu(self.fc1(self.norm(x))))


class UserTower(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.history_items = nn.Embedding(c.n_id_titles, c.history_dim)
        self.history_positions = nn.Embedding(c.history_len, c.history_dim)  # 0 = most recent
        self.history_attention = AdditiveAttention(c.history_dim, c.attention_dim)
        self.empty_history = nn.Parameter(torch.zeros(c.history_dim))  # stands in for the pooled vector
        self.features = nn.ModuleList(nn.Embedding(n + 1, c.user_feature_dim) for n in c.user_feature_cardinalities)
        n_features = len(c.user_feature_cardinalities)
        self.feature_mlp = nn.Sequential(nn.Linear(n_features * c.user_feature_dim, c.user_feature_hidden_dim),
                                         nn.ReLU()) if n_features else None
        self.user_ids = nn.Embedding(c.n_id_users, c.history_dim) if c.user_id_embedding else None
        width = (c.history_dim + (c.user_feature_hidden_dim if n_features else 0)
                 + (c.history_dim if self.user_ids is not None else 0))
        # each part is layer-normalised before the concatenation, so none dominates by its initial scale
        self.part_norms = nn.ModuleList(nn.LayerNorm(n) for n in (
            [c.history_dim] + ([c.user_feature_hidden_dim] if n_features else [])
            + ([c.history_dim] if self.user_ids is not None else [])))
        self.input = nn.Linear(width, c.user_hidden_dim)
        self.blocks = nn.Sequential(*(ResidualBlock(c.user_hidden_dim) for _ in range(c.n_residual_blocks)))
        self.norm = nn.LayerNorm(c.user_hidden_dim)
        self.output = nn.Linear(c.user_hidden_dim, c.embedding_dim)
        init_output(self.output, c)

    def pooled_history(self, history: torch.Tensor) -> torch.Tensor:
        present = history >= 0
        h = self.history_items(history.clamp(min=0)) + self.history_positions.weight[: history.shape[1]]
        alpha = masked_softmax(self.history_attention(h), present)  # [B, L]
        pooled = torch.einsum("bl,bld->bd", alpha, h)
        empty = ~present.any(dim=1, keepdim=True)
        return torch.where(empty, self.empty_history, pooled)

    def forward(self, users: UserTensors) -> torch.Tensor:
        parts = [self.pooled_history(users.history)]
        if self.feature_mlp is not None:
            fields = [table(users.features[:, j]) for j, table in enumerate(self.features)]
            parts.append(self.feature_mlp(torch.cat(fields, dim=1)))
        if self.user_ids is not None:
            known = (users.id_rows >= 0).unsqueeze(1)
            parts.append(self.user_ids(users.id_rows.clamp(min=0)) * known)  # unknown user: zero ID embedding
        parts = [norm(part) for norm, part in zip(self.part_norms, parts)]
        x = self.blocks(self.input(torch.cat(parts, dim=1)))
        return self.output(self.norm(x))


class ItemTower(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.type_names = [t for t in ITEM_TYPES if t in c.item_types]  # fixed order, whatever the config order
        self.fusion = c.fusion
        d = c.modality_dim
        encoders = {
            "id": lambda: nn.Embedding(c.n_id_titles, d),
            "categorical": lambda: nn.EmbeddingBag(c.categorical_width, d, mode="sum"),
            "synopsis": lambda: nn.Linear(c.synopsis_dim, d),
            "cover_art": lambda: nn.Linear(c.cover_art_dim, d),
        }
        self.encoders = nn.ModuleDict({t: encoders[t]() for t in self.type_names})
        self.norms = nn.ModuleDict({t: nn.LayerNorm(d) for t in self.type_names})
        self.attention = AdditiveAttention(d, c.attention_dim) if c.fusion == "attention" else None
        self.output = nn.Linear(len(self.type_names) * d, c.embedding_dim)  # the one-layer perceptron
        # the concatenation holds one unit-variance type per present slot; attention scales each by alpha ~ 1/M
        init_output(self.output, c)
        if c.fusion == "attention":
            with torch.no_grad():
                self.output.weight.mul_(len(self.type_names))
        # standardisation of the dense inputs: x -> (x - mean) / scale, identity until fit_input_statistics
        for name, width in (("synopsis", c.synopsis_dim), ("cover_art", c.cover_art_dim)):
            if name in self.type_names:
                self.register_buffer(f"{name}_mean", torch.zeros(width))
                self.register_buffer(f"{name}_scale", torch.ones(()))

    @torch.no_grad()
    def fit_input_statistics(self, items: ItemTensors) -> None:
        """Set the dense-input standardisation from the titles that have the modality (training features)."""
        for name in ("synopsis", "cover_art"):
            if name not in self.type_names:
                continue
            values = getattr(items, name)[getattr(items, f"{name}_present")].double()
            mean = values.mean(0) if len(values) else torch.zeros(values.shape[1], dtype=torch.float64)
            scale = (values - mean).pow(2).mean().sqrt() if len(values) > 1 else torch.ones((), dtype=torch.float64)
            scale = scale if bool(torch.isfinite(scale)) and float(scale) > 1e-12 else torch.ones_like(scale)
            getattr(self, f"{name}_mean").copy_(mean.float())
            getattr(self, f"{name}_scale").copy_(scale.float())

    def encode_types(self, items: ItemTensors) -> tuple[torch.Tensor, torch.Tensor]:
        """h [n, M, modality_dim] (zero where missing) and present [n, M]."""
        embeddings, present = [], []
        for name in self.type_names:
            encoder = self.encoders[name]
            if name == "id":
                mask = items.id_rows >= 0
                h = encoder(items.id_rows.clamp(min=0))
            elif name == "categorical":
                counts = items.categorical_offsets[1:] - items.categorical_offsets[:-1]
                mask = counts > 0
                h = encoder(items.categorical_indices, items.categorical_offsets[:-1])
            elif name == "synopsis":
                mask = items.synopsis_present
                h = encoder((items.synopsis - self.synopsis_mean) / self.synopsis_scale)
            else:
                mask = items.cover_art_present
                h = encoder((items.cover_art - self.cover_art_mean) / self.cover_art_scale)
            h = self.norms[name](h)
            embeddings.append(h * mask.unsqueeze(1))  # zero the bias too: a missing type is a zero vector
            present.append(mask)
        return torch.stack(embeddings, dim=1), torch.stack(present, dim=1)

    def attention_weights(self, items: ItemTensors) -> torch.Tensor:
        """alpha [n, M] in the order of `type_names`: sums to one over the types present, 0 where missing."""
        if self.attention is None:
            raise ValueError("this item tower concatenates its metadata types; it has no attention weights")
        h, present = self.encode_types(items)
        return masked_softmax(self.attention(h), present)

    def forward(self, items: ItemTensors) -> torch.Tensor:
        h, present = self.encode_types(items)
        if self.attention is not None:
            h = h * masked_softmax(self.attention(h), present).unsqueeze(-1)
        return self.output(h.flatten(1))


class TwoTowerModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.user_tower = UserTower(config)
        self.item_tower = ItemTower(config)
        for module in self.modules():
            if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
                nn.init.normal_(module.weight, std=config.embedding_init_std)
        nn.init.normal_(self.user_tower.empty_history, std=config.embedding_init_std)  # not LayerNorm's x = 0
        # ID vocabularies travel in the state dict: scoring maps its own rows to them by title_id / user_id
        self.register_buffer("title_vocab", torch.zeros(config.n_id_titles, dtype=torch.int64))
        self.register_buffer("user_vocab", torch.zeros(config.n_id_users, dtype=torch.int64))

    def forward(self, users: UserTensors, items: ItemTensors) -> torch.Tensor:
        """Logits u . i for aligned pairs (row k of users with row k of items); sigmoid gives the score."""
        return (self.user_tower(users) * self.item_tower(items)).sum(-1)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
