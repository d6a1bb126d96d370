"""Both towers, every variant: shapes, masking, attention fusion, the zeroed ID of cold titles."""

import numpy as np
import pytest
import torch

from rec_assets.model.checkpoint import attention_weights, embed_items, embed_users
from rec_assets.model.data import item_tensors, make_synthetic, user_tensors
from rec_assets.model.variants import VARIANTS, build_model

pytestmark = pytest.mark.usefixtures("one_cpu_thread")  # conftest.py

SMALL = dict(embedding_dim=24, modality_dim=8, attention_dim=8, history_dim=8, user_hidden_dim=16, history_len=6)


@pytest.fixture(scope="module")
def problem():
    # history (8) longer than the model's window (6); the first 5 users have no history at all
    return make_synthetic(n_users=40, n_titles=30, n_cold=6, history_len=8, n_positives=2, missing_share=0.3,
                          seed=2)


def inputs(model, problem, window="score"):
    items, users = (problem.score_items, problem.score_users) if window == "score" else \
        (problem.train_items, problem.train_users)
    return (user_tensors(users, items, model.title_vocab.numpy(), model.user_vocab.numpy(), model.config.history_len),
            item_tensors(items, model.title_vocab.numpy()))


def test_the_variant_list_is_the_papers_table_1():
    assert list(VARIANTS) == ["synopsis", "cover_art", "categorical", "ncf_extension", "concat_no_id",
                              "attention_no_id", "concat_id", "attention_id"]
    assert [v.name for v in VARIANTS.values() if "id" in v.item_types] == ["ncf_extension", "concat_id",
                                                                           "attention_id"]
    assert [v.name for v in VARIANTS.values() if v.user_id_embedding] == ["ncf_extension"]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_tower_shapes_for_every_variant(variant, problem):
    model = build_model(variant, problem.train_items, problem.train_users, **SMALL)
    users, items = inputs(model, problem)
    u = model.user_tower(users)
    v = model.item_tower(items)
    assert u.shape == (problem.score_users.n_users, 24)
    assert v.shape == (problem.score_items.n_titles, 24)
    assert torch.isfinite(u).all() and torch.isfinite(v).all()
    pairs = torch.arange(10)
    assert model(users.take(pairs), items.take(pairs)).shape == (10,)
    assert model.item_tower.type_names == [t for t in ("id", "categorical", "synopsis", "cover_art")
                                           if t in VARIANTS[variant].item_types]


def test_empty_history_gives_a_finite_embedding_and_finite_gradients(problem):
    model = build_model("attention_id", problem.train_items, problem.train_users, **SMALL)
    users, items = inputs(model, problem, window="train")
    empty = torch.arange(5)  # make_synthetic gives the first users no training history
    assert (users.history[empty] < 0).all()
    model(users.take(empty), items.take(empty)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.user_tower.empty_history.grad.abs().sum() > 0


def test_padding_is_masked_and_position_matters(problem):
    model = build_model("attention_no_id", problem.train_items, problem.train_users, **SMALL)
    users, _ = inputs(model, problem)
    one = users.take(torch.tensor([20]))
    one.history[0, 3:] = -1  # three titles, then padding (padding reads table row 0 before masking)
    one.history[0, :3] = torch.tensor([5, 6, 7])
    before = model.user_tower(one)
    with torch.no_grad():
        model.user_tower.history_items.weight[0] += 10.0
    assert torch.equal(model.user_tower(one), before)
    one.history[0, :3] = torch.tensor([7, 6, 5])  # same titles, other order
    assert not torch.allclose(model.user_tower(one), before)


def test_attention_weights_sum_to_one_and_ignore_missing_types(problem):
    model = build_model("attention_id", problem.train_items, problem.train_users, **SMALL)
    items = problem.score_items
    weights, names = attention_weights(model, items)
    assert names == ["id", "categorical", "synopsis", "cover_art"]
    assert weights.shape == (items.n_titles, 4)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    missing = np.stack([~items.id_known, np.diff(items.categorical_offsets) == 0, items.synopsis_missing,
                        items.cover_art_missing], axis=1)
    assert missing.any(axis=0)[[0, 2, 3]].all(), "the fixture must have unknown IDs, missing synopses and covers"
    assert (weights[missing] == 0).all()
    assert (weights[~missing] > 0).all()
    with pytest.raises(ValueError, match="no attention weights"):
        attention_weights(build_model("concat_id", problem.train_items, problem.train_users, **SMALL), items)


@pytest.mark.parametrize("variant", ["attention_id", "concat_id"])
def test_a_title_with_a_zeroed_id_is_scored_from_metadata_alone(variant, problem):
    model = build_model(variant, problem.train_items, problem.train_users, **SMALL)
    items = problem.score_items
    items.id_known = items.id_known.copy()
    demoted = int(np.flatnonzero(items.id_known)[0])
    items.id_known[demoted] = False  # known to the model, but flagged unknown this week: ID zeroed too
    cold = np.append(problem.cold_rows, demoted)
    warm = np.flatnonzero(items.id_known)
    u = embed_users(model, problem.score_users, items)
    before = u @ embed_items(model, items).T
    with torch.no_grad():
        model.item_tower.encoders["id"].weight.add_(torch.randn_like(model.item_tower.encoders["id"].weight))
    after = u @ embed_items(model, items).T
    assert np.array_equal(after[:, cold], before[:, cold])
    assert not np.allclose(after[:, warm], before[:, warm])  # the ID does move the warm titles


def test_model_weights_depend_on_the_seed_alone(problem):
    a = build_model("attention_id", problem.train_items, problem.train_users, seed=3, **SMALL)
    torch.rand(100)  # global RNG use in between must not matter
    b = build_model("attention_id", problem.train_items, problem.train_users, seed=3, **SMALL)
    c = build_model("attention_id", problem.train_items, problem.train_users, seed=4, **SMALL)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.item_tower.output.weight, c.item_tower.output.weight)
