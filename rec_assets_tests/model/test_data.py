"""The numpy -> tensor contract and negative sampling."""

import numpy as np
import pytest
import torch

from rec_assets.model.data import (
    NO_ROW, Interactions, contains, item_tensors, lookup, make_synthetic, padded_history, sample_negatives,
    take_csr, title_vocabulary, user_tensors, user_vocabulary, watched_keys,
)


@pytest.fixture(scope="module")
def problem():
    return make_synthetic(n_users=60, n_titles=50, n_cold=10, history_len=8, n_positives=3, seed=1)


def test_negative_sampling_never_returns_a_watched_title(problem):
    items, users, positives = problem.train_items, problem.train_users, problem.train_positives
    watched = watched_keys(users, positives, items.n_titles)
    pool = np.flatnonzero(items.id_known)
    user_rows = np.repeat(positives.user_rows, 20)  # many draws, so collisions certainly happen first
    negatives = sample_negatives(np.random.default_rng(0), user_rows, 30, pool, watched, items.n_titles)
    assert negatives.shape == (len(user_rows), 30)
    assert not contains(watched, user_rows[:, None] * items.n_titles + negatives).any()
    assert np.isin(negatives, pool).all()
    # the watched set really is history ∪ positives
    u, t = positives.user_rows[0], positives.title_rows[0]
    assert contains(watched, np.array([u * items.n_titles + t]))[0]


def test_negative_sampling_covers_exactly_the_unwatched_titles_of_a_heavy_watcher():
    n_titles = 100
    watched = np.sort(np.arange(98, dtype=np.int64))  # user 0 watched all but titles 98 and 99
    negatives = sample_negatives(np.random.default_rng(0), np.zeros(50, dtype=np.int64), 20,
                                 np.arange(n_titles), watched, n_titles, max_rounds=2)
    assert set(np.unique(negatives)) == {98, 99}


def test_negative_sampling_refuses_a_user_who_watched_everything():
    with pytest.raises(ValueError, match="watched every candidate"):
        sample_negatives(np.random.default_rng(0), np.zeros(3, dtype=np.int64), 5, np.arange(10),
                         np.arange(10, dtype=np.int64), 10, max_rounds=2)


def test_negative_sampling_is_uniform_over_unwatched_titles():
    watched = np.array([3, 7], dtype=np.int64)
    negatives = sample_negatives(np.random.default_rng(0), np.zeros(20_000, dtype=np.int64), 1, np.arange(10),
                                 watched, 10)
    counts = np.bincount(negatives.ravel(), minlength=10)
    assert counts[3] == counts[7] == 0
    expected = 20_000 / 8
    assert np.all(np.abs(counts[counts > 0] - expected) < 0.1 * expected)


def test_padded_history_keeps_the_last_titles_most_recent_first():
    offsets = np.array([0, 5, 5, 7])
    items = np.array([10, 11, 12, 13, 14, 20, 21])
    assert padded_history(offsets, items, 3).tolist() == [[14, 13, 12], [NO_ROW] * 3, [21, 20, NO_ROW]]


def test_take_csr_gathers_rows_in_the_requested_order():
    offsets = torch.tensor([0, 2, 2, 5])
    indices = torch.tensor([1, 4, 0, 2, 3])
    new_offsets, new_indices = take_csr(offsets, indices, torch.tensor([2, 1, 0, 2]))
    assert new_offsets.tolist() == [0, 3, 3, 5, 8]
    assert new_indices.tolist() == [0, 2, 3, 1, 4, 0, 2, 3]


def test_item_ids_are_zeroed_for_unknown_titles_and_looked_up_by_title_id(problem):
    items = problem.train_items
    vocab = title_vocabulary(items)
    tensors = item_tensors(items, vocab)
    assert (tensors.id_rows[torch.from_numpy(problem.cold_rows)] == NO_ROW).all()
    warm = np.flatnonzero(items.id_known)
    assert (vocab[tensors.id_rows[torch.from_numpy(warm)].numpy()] == items.title_ids[warm]).all()
    assert lookup(vocab, np.array([-5]))[0] == NO_ROW


def test_user_tensors_of_a_row_subset_match_the_full_build(problem):
    items, users = problem.train_items, problem.train_users
    args = (title_vocabulary(items), user_vocabulary(users), 6)
    full = user_tensors(users, items, *args)
    rows = np.array([7, 0, 33])
    part = user_tensors(users, items, *args, rows=rows)
    assert torch.equal(part.history, full.history[rows])
    assert torch.equal(part.features, full.features[rows])
    assert torch.equal(part.id_rows, full.id_rows[rows])


def test_history_titles_unknown_to_the_model_are_dropped_not_padded(problem):
    items, users = problem.score_items, problem.score_users
    vocab = title_vocabulary(items)
    user = 10
    history = users.history_items[users.history_offsets[user]: users.history_offsets[user + 1]]
    without_newest = vocab[vocab != items.title_ids[history[-1]]]  # the newest title becomes unknown
    tensors = user_tensors(users, items, without_newest, user_vocabulary(users), 4, rows=np.array([user]))
    expected = lookup(without_newest, items.title_ids[history[-2:-6:-1]])
    assert tensors.history[0].tolist() == expected.tolist()


def test_validation_names_the_broken_field(problem):
    bad = Interactions(np.array([0]), np.array([problem.train_items.n_titles]))
    with pytest.raises(ValueError, match="title_rows"):
        bad.validate(problem.train_users.n_users, problem.train_items.n_titles)
