"""Precision@K, Recall@K, Coverage@K, Converted Coverage@K against hand-worked examples."""

import math

import numpy as np
import pytest
import torch

from rec_assets.evaluation.metrics import METRICS, candidate_masks, evaluate_segments, evaluate_top_k
from rec_assets.evaluation.scoring import CSR, top_k

# Titles 0-4 are movies, 5-6 TV. K = 2.
MOVIES = np.array([True] * 5 + [False] * 2)
RECOMMENDED = np.array([
    [0, 1],   # u0: truth {0, 2, 3}          -> 1 hit (0): P 1/2, R 1/3
    [1, 2],   # u1: truth {1, 2}, 1 watched twice -> 2 hits: P 1, R 1
    [3, -1],  # u2: truth {0}, list padded   -> no hit: P 0, R 0
    [4, 0],   # u3: truth {5} is TV only     -> not evaluated for movies; 4 must not count in coverage
    [4, 2],   # u4: no Y' watch              -> not evaluated
])
TRUTH_USERS = np.array([0, 0, 0, 1, 1, 1, 2, 3])
TRUTH_ITEMS = np.array([0, 2, 3, 1, 2, 1, 0, 5])
EXPECTED = {
    "precision": (0.5 + 1.0 + 0.0) / 3,
    "recall": (1 / 3 + 1.0 + 0.0) / 3,
    "coverage": 4,             # {0, 1, 2, 3} from u0-u2; u3's 4 is not an evaluated user's
    "converted_coverage": 3,   # {0, 1, 2}; 3 is in u2's list and in u0's truth, but not the same user's
    "evaluated_users": 3,
}


def test_hand_worked_example_from_pairs():
    result = evaluate_top_k(RECOMMENDED, (TRUTH_USERS, TRUTH_ITEMS), 2, candidate_mask=MOVIES)
    assert result == pytest.approx(EXPECTED)
    assert isinstance(result["coverage"], int) and isinstance(result["evaluated_users"], int)


def test_csr_truth_gives_the_same_result():
    truth = CSR.from_pairs(TRUTH_USERS, TRUTH_ITEMS, 5)
    assert evaluate_top_k(RECOMMENDED, truth, 2, candidate_mask=MOVIES) == pytest.approx(EXPECTED)


def test_without_a_mask_the_truth_outside_the_category_counts():
    result = evaluate_top_k(RECOMMENDED, (TRUTH_USERS, TRUTH_ITEMS), 2)
    # u3 is now evaluated (truth {5}), with 0 hits and list {4, 0}
    assert result["evaluated_users"] == 4
    assert result["precision"] == pytest.approx(1.5 / 4)
    assert result["coverage"] == 5


def test_k_smaller_than_the_list_uses_the_head():
    result = evaluate_top_k(RECOMMENDED, (TRUTH_USERS, TRUTH_ITEMS), 1, candidate_mask=MOVIES)
    # heads 0, 1, 3: hits u0, u1
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx((1 / 3 + 1 / 2 + 0) / 3)
    assert result["coverage"] == 3 and result["converted_coverage"] == 2


def test_tv_segment_sees_only_tv_truth():
    tv = ~MOVIES
    lists = np.array([[5, 6], [6, 5], [5, -1], [5, 6], [6, -1]])
    result = evaluate_top_k(lists, (TRUTH_USERS, TRUTH_ITEMS), 2, candidate_mask=tv)
    assert result == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "coverage": 2, "converted_coverage": 1, "evaluated_users": 1}
    )


def test_users_with_no_hits_give_zero_not_nan():
    result = evaluate_top_k(np.array([[1, 2], [2, 1]]), (np.array([0, 1]), np.array([0, 0])), 2)
    assert result == {"precision": 0.0, "recall": 0.0, "coverage": 2, "converted_coverage": 0, "evaluated_users": 2}


def test_identical_lists_count_each_title_once_in_coverage():
    result = evaluate_top_k(np.array([[7, 3], [7, 3], [7, 3]]), (np.array([0, 1, 2]), np.array([7, 7, 3])), 2)
    assert result["coverage"] == 2 and result["converted_coverage"] == 2
    assert result["precision"] == pytest.approx(0.5)


def test_empty_candidate_set_gives_nan_rates_and_zero_counts():
    nothing = np.zeros(7, dtype=bool)
    result = evaluate_top_k(np.full((5, 2), -1), (TRUTH_USERS, TRUTH_ITEMS), 2, candidate_mask=nothing)
    assert math.isnan(result["precision"]) and math.isnan(result["recall"])
    assert (result["coverage"], result["converted_coverage"], result["evaluated_users"]) == (0, 0, 0)


def test_no_truth_at_all():
    result = evaluate_top_k(np.array([[0, 1]]), (np.array([], dtype=int), np.array([], dtype=int)), 2)
    assert math.isnan(result["precision"]) and result["evaluated_users"] == 0 and result["coverage"] == 0


def test_tied_scores_rank_deterministically_into_the_metrics():
    # Three identical titles: the lower indices fill the list, so the user watching title 2 gets no hit.
    indices, _ = top_k(torch.ones(2, 2), torch.ones(3, 2), 2)
    result = evaluate_top_k(indices.numpy(), (np.array([0, 1]), np.array([1, 2])), 2)
    assert indices.tolist() == [[0, 1], [0, 1]]
    assert result["precision"] == pytest.approx(0.25) and result["converted_coverage"] == 1


def test_caller_bugs_raise():
    truth = (TRUTH_USERS, TRUTH_ITEMS)
    with pytest.raises(ValueError, match="twice"):
        evaluate_top_k(np.array([[1, 1]] * 5), truth, 2)
    with pytest.raises(ValueError, match="outside the candidate set"):
        evaluate_top_k(np.array([[5, 1]] * 5), truth, 2, candidate_mask=MOVIES)
    with pytest.raises(ValueError, match="user row out of range"):
        evaluate_top_k(np.array([[1, 2]]), truth, 2)
    with pytest.raises(ValueError, match="k must be"):
        evaluate_top_k(RECOMMENDED, truth, 3)


def test_segments_long_frame():
    masks = candidate_masks(
        is_warm=np.array([1, 1, 1, 1, 0, 1, 0], bool),
        is_cold=np.array([0, 0, 0, 0, 1, 0, 1], bool),
        is_tv=~MOVIES,
    )
    assert masks[("cold", "movie")].tolist() == [False] * 4 + [True, False, False]
    lists = {("warm", "movie"): np.array([[0, 1], [1, 2], [3, -1], [2, 0], [1, 2]]),
             ("cold", "tv"): np.array([[6, -1]] * 5)}
    frame = evaluate_segments(lists, (TRUTH_USERS, TRUTH_ITEMS), masks, k=2)
    assert list(frame.columns) == ["candidate_set", "category", "metric", "value", "evaluated_users"]
    assert len(frame) == 2 * len(METRICS)
    warm = frame[frame["candidate_set"] == "warm"].set_index("metric")["value"]
    assert warm["precision"] == pytest.approx(0.5) and warm["coverage"] == 4
    cold = frame[frame["candidate_set"] == "cold"]
    assert (cold["evaluated_users"] == 0).all()


def test_per_user_hits_are_what_evaluate_top_k_averages():
    from rec_assets.evaluation.metrics import user_hits

    per_user = user_hits(RECOMMENDED, (TRUTH_USERS, TRUTH_ITEMS), 2, candidate_mask=MOVIES)
    assert per_user.truth_count.tolist() == [3, 2, 1, 0, 0]  # u3's truth is TV only: not a movie truth
    assert per_user.evaluated.tolist() == [True, True, True, False, False]
    assert per_user.hits().tolist() == [1, 2, 0, 0, 0]
    assert per_user.precision().tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert per_user.recall().tolist() == pytest.approx([1 / 3, 1.0, 0.0])
    assert per_user.precision(1).tolist() == pytest.approx([1.0, 1.0, 0.0])  # @1: first positions only
    assert per_user.recall(1).tolist() == pytest.approx([1 / 3, 1 / 2, 0.0])
    assert np.mean(per_user.precision()) == pytest.approx(EXPECTED["precision"])
    with pytest.raises(ValueError):
        per_user.precision(3)


def test_user_auc_is_one_for_a_perfect_scorer_zero_reversed_and_nan_when_undefined():
    from rec_assets.evaluation.metrics import user_auc

    truth = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    perfect = truth.astype(float)  # truth scored above everything else
    auc = user_auc(truth, perfect)
    assert auc[:2].tolist() == [1.0, 1.0] and np.isnan(auc[2:]).all()
    assert user_auc(truth[:2], -perfect[:2]).tolist() == [0.0, 0.0]
    assert user_auc(truth[:1], np.zeros((1, 4))).tolist() == [0.5]  # all tied: one half
    assert user_auc(np.array([[1, 0, 0, 0]], bool), np.array([[0.5, 0.9, 0.1, 0.2]])).tolist() == [pytest.approx(2 / 3)]


def test_user_auc_equals_sklearn_roc_auc_score_per_user_ties_included():
    from sklearn.metrics import roc_auc_score

    from rec_assets.evaluation.metrics import user_auc

    rng = np.random.default_rng(0)
    truth = rng.random((40, 30)) < 0.2
    truth[:, 0], truth[:, 1] = True, False
    scores = np.round(rng.random((40, 30)), 1)  # coarse scores: many ties
    expected = [roc_auc_score(t, s) for t, s in zip(truth, scores)]
    np.testing.assert_allclose(user_auc(truth, scores), expected, rtol=0, atol=1e-12)
