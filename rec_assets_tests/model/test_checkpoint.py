"""Checkpoints round-trip exactly; scoring embeddings are chunk-independent and follow title_ids, not rows."""

import os

import numpy as np
import pytest
import torch

from rec_assets.model.checkpoint import (
    attention_weights, embed_items, embed_users, load_checkpoint, save_checkpoint, scores,
)
from rec_assets.model.data import ItemFeatures, make_synthetic
from rec_assets.model.train import TrainConfig, train_variant
from rec_assets.storage.hashing import file_sha256

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # conftest.py

SMALL = dict(embedding_dim=16, modality_dim=8, attention_dim=8, history_dim=8, user_hidden_dim=16, history_len=6)


@pytest.fixture(scope="module")
def problem():
    return make_synthetic(n_users=50, n_titles=40, n_cold=8, history_len=8, n_positives=3, seed=4)


@pytest.fixture(scope="module")
def trained(problem):
    config = TrainConfig(epochs=1, batch_size=32, negative_rate=4)
    return train_variant("ncf_extension", problem.train_items, problem.train_users, problem.train_positives,
                         config, **SMALL), config


@pytest.mark.parametrize("variant", ["attention_id", "ncf_extension"])
def test_checkpoint_round_trip_gives_identical_scores(variant, problem, tmp_path):
    config = TrainConfig(epochs=1, batch_size=32, negative_rate=4)
    model = train_variant(variant, problem.train_items, problem.train_users, problem.train_positives, config,
                          **SMALL).model
    path = tmp_path / "week" / "model.pt"
    digest = save_checkpoint(path, model, problem.train_items.title_ids, config.to_dict(),
                             {"variant": variant, "week": "2026-03-30"})
    loaded = load_checkpoint(path)
    assert digest == loaded.sha256 == file_sha256(path)
    assert loaded.extra == {"variant": variant, "week": "2026-03-30"}
    assert loaded.train_config == config.to_dict()
    assert loaded.model_config == model.config
    assert np.array_equal(loaded.title_ids, problem.train_items.title_ids)
    before = scores(model, problem.score_users, problem.score_items)
    after = scores(loaded.model, problem.score_users, problem.score_items)
    assert np.array_equal(before, after)
    assert os.listdir(path.parent) == ["model.pt"]  # no temp file left behind


def test_checkpoint_loads_with_weights_only(trained, tmp_path):
    result, _ = trained
    save_checkpoint(tmp_path / "m.pt", result.model, np.arange(3))
    payload = torch.load(tmp_path / "m.pt", weights_only=True)  # raises on any pickled object
    assert set(payload) >= {"state_dict", "model_config", "train_config", "title_ids", "format_version"}


def test_same_weights_same_file_hash(trained, tmp_path):
    result, _ = trained
    a = save_checkpoint(tmp_path / "a.pt", result.model, np.arange(3))
    b = save_checkpoint(tmp_path / "b.pt", result.model, np.arange(3))
    with torch.no_grad():
        result.model.item_tower.output.bias.add_(1.0)
    c = save_checkpoint(tmp_path / "c.pt", result.model, np.arange(3))
    with torch.no_grad():
        result.model.item_tower.output.bias.sub_(1.0)
    assert a == b != c


def test_user_embeddings_do_not_depend_on_the_chunk_size(trained, problem):
    result, _ = trained
    whole = embed_users(result.model, problem.score_users, problem.score_items, batch_size=10_000)
    chunked = embed_users(result.model, problem.score_users, problem.score_items, batch_size=7)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)


def test_scoring_follows_title_ids_not_row_order(problem, tmp_path):
    """A scoring week lists its titles in its own order; the ID embeddings must follow the title_id."""
    model = train_variant("attention_id", problem.train_items, problem.train_users, problem.train_positives,
                          TrainConfig(epochs=1, batch_size=32, negative_rate=4), **SMALL).model
    items = problem.score_items
    order = np.random.default_rng(0).permutation(items.n_titles)
    starts, ends = items.categorical_offsets[:-1][order], items.categorical_offsets[1:][order]
    shuffled = ItemFeatures(
        title_ids=items.title_ids[order], is_tv=items.is_tv[order],
        categorical_offsets=np.concatenate([[0], np.cumsum(ends - starts)]),
        categorical_indices=np.concatenate([items.categorical_indices[s:e] for s, e in zip(starts, ends)]),
        categorical_width=items.categorical_width,
        synopsis=items.synopsis[order], synopsis_missing=items.synopsis_missing[order],
        cover_art=items.cover_art[order], cover_art_missing=items.cover_art_missing[order],
        id_known=items.id_known[order])
    np.testing.assert_allclose(embed_items(model, shuffled), embed_items(model, items)[order], rtol=1e-5, atol=1e-6)
    weights, names = attention_weights(model, shuffled)
    np.testing.assert_allclose(weights, attention_weights(model, items)[0][order], rtol=1e-5, atol=1e-6)


def test_the_input_standardisation_is_fitted_and_travels_in_the_checkpoint(tmp_path):
    import numpy as np
    import torch

    from rec_assets.model.checkpoint import embed_items, load_checkpoint, save_checkpoint
    from rec_assets.model.data import make_synthetic
    from rec_assets.model.variants import build_model

    problem = make_synthetic(n_users=30, n_titles=20, n_cold=4, seed=5)
    items = problem.train_items
    items.cover_art = (items.cover_art * 50.0 + 100.0).astype(np.float32)
    model = build_model("cover_art", items, problem.train_users, embedding_dim=16, modality_dim=8)
    present = ~items.cover_art_missing
    np.testing.assert_allclose(model.item_tower.cover_art_mean.numpy(), items.cover_art[present].mean(0), rtol=1e-4)
    assert float(model.item_tower.cover_art_scale) > 10
    save_checkpoint(tmp_path / "m.pt", model, items.title_ids)
    loaded = load_checkpoint(tmp_path / "m.pt").model
    assert torch.equal(loaded.item_tower.cover_art_mean, model.item_tower.cover_art_mean)
    assert np.array_equal(embed_items(loaded, items), embed_items(model, items))
