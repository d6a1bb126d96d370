"""Random and popularity baselines: same list contract as the models, expected precision of random."""

import numpy as np
import pytest

from rec_assets.evaluation.baselines import (
    expected_random_precision,
    expected_random_recall,
    popularity_top_k,
    random_top_k,
)
from rec_assets.evaluation.metrics import evaluate_top_k
from rec_assets.evaluation.scoring import CSR


def random_world(n_users=20_000, n_items=60, n_candidates=50, n_watched=5, n_truth=3, seed=1):
    """Each user watched n_watched candidates in X' and n_truth other candidates in Y'."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(n_items, dtype=bool)
    mask[rng.choice(n_items, n_candidates, replace=False)] = True
    candidates = np.flatnonzero(mask)
    picks = candidates[np.argsort(rng.random((n_users, n_candidates)), axis=1)[:, : n_watched + n_truth]]
    users = np.repeat(np.arange(n_users), n_watched)
    exclude = CSR.from_pairs(users, picks[:, :n_watched].ravel(), n_users)
    truth = (np.repeat(np.arange(n_users), n_truth), picks[:, n_watched:].ravel())
    return mask, exclude, truth


def test_random_precision_is_near_its_expected_value():
    n_users, k = 20_000, 6
    mask, exclude, truth = random_world(n_users)
    lists = random_top_k(n_users, k, mask, exclude, seed=7)
    result = evaluate_top_k(lists, truth, k, candidate_mask=mask)
    expected_p = expected_random_precision(np.full(n_users, 45), np.full(n_users, 3), k)
    expected_r = expected_random_recall(np.full(n_users, 45), np.full(n_users, 3), k)
    assert expected_p == pytest.approx(3 / 45)
    assert expected_r == pytest.approx(6 / 45)
    # Per-user precision has sd ~0.095, so the mean over 20,000 users has sd ~0.0007: 5 sd below.
    assert result["precision"] == pytest.approx(expected_p, abs=0.0035)
    assert result["recall"] == pytest.approx(expected_r, abs=0.007)
    assert result["evaluated_users"] == n_users


def test_random_lists_are_valid_uniform_and_seeded():
    n_users, k = 6_000, 6
    mask, exclude, _ = random_world(n_users)
    lists = random_top_k(n_users, k, mask, exclude, seed=3)
    assert lists.shape == (n_users, k) and lists.dtype == np.int64
    assert mask[lists].all()
    assert (np.sort(lists, axis=1)[:, 1:] != np.sort(lists, axis=1)[:, :-1]).all()
    for u in range(0, n_users, 97):
        assert not set(lists[u]) & set(exclude.row(u))
    # Every candidate has the same chance: 6,000 * 6 / 50 = 720 draws each (sd ~26; 50 candidates, bound ~5.7 sd).
    counts = np.bincount(lists.ravel(), minlength=mask.size)[mask]
    assert np.abs(counts - 720).max() < 150
    np.testing.assert_array_equal(lists, random_top_k(n_users, k, mask, exclude, seed=3))
    assert not np.array_equal(lists, random_top_k(n_users, k, mask, exclude, seed=4))


def test_random_pads_when_candidates_run_out():
    lists = random_top_k(2, 4, np.array([True, True, False]), CSR.from_pairs([1], [0], 2), seed=0)
    assert sorted(lists[0, :2].tolist()) == [0, 1] and lists[0, 2:].tolist() == [-1, -1]
    assert lists[1].tolist() == [1, -1, -1, -1]


def test_popularity_orders_by_views_then_lower_index_and_excludes_watched():
    views = np.array([5, 1, 5, 0, 9, 7])
    mask = np.array([True, True, True, True, True, False])  # title 5 is popular but not a candidate
    exclude = CSR.from_pairs([1, 1], [4, 0], 3)
    lists = popularity_top_k(views, 3, 3, mask, exclude)
    assert lists.tolist() == [[4, 0, 2], [2, 1, 3], [4, 0, 2]]


def test_popularity_pads_when_candidates_run_out():
    lists = popularity_top_k(np.array([1, 2]), 1, 4)
    assert lists.tolist() == [[1, 0, -1, -1]]


def test_expected_random_precision_by_hand():
    # u0: 3 of 12 available relevant, K 6 -> E[hits] 1.5, P 0.25; u1: 2 of 4 -> K capped at 4 -> E[hits] 2, P 1/3;
    # u2: nothing relevant -> not evaluated.
    assert expected_random_precision([12, 4, 9], [3, 2, 0], 6) == pytest.approx((0.25 + 1 / 3) / 2)
    assert expected_random_recall([12, 4, 9], [3, 2, 0], 6) == pytest.approx((0.5 + 1.0) / 2)
    assert np.isnan(expected_random_precision([5], [0], 6))
    with pytest.raises(ValueError):
        expected_random_precision([1], [2], 6)
