"""Pooled bootstrap intervals over users and the paired comparison, on hand-made per-user values."""

import numpy as np
import pandas as pd
import pytest

from rec_assets.evaluation.intervals import NOT_SEPARABLE, paired_difference, pooled_interval


def _bernoulli_users(n_users: int, p: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Values 0/1 with an exact mean of p (a fixed share of ones, shuffled), one value per user."""
    ones = int(round(p * n_users))
    values = np.r_[np.ones(ones), np.zeros(n_users - ones)]
    return np.random.default_rng(seed).permutation(values), np.arange(n_users)


def test_pooled_value_is_the_mean_over_pairs_and_the_interval_contains_it():
    values, users = _bernoulli_users(200, 0.25)
    result = pooled_interval(values, users, seed=0)
    assert result.value == pytest.approx(0.25)
    assert result.low < 0.25 < result.high
    assert (result.n_users, result.n_pairs) == (200, 200)
    # roughly the normal interval of a proportion: +-1.96 sqrt(p(1-p)/n) = +-0.06
    assert result.high - result.low == pytest.approx(2 * 1.96 * np.sqrt(0.25 * 0.75 / 200), rel=0.25)


def test_interval_narrows_with_more_users():
    widths = []
    for n in (50, 200, 800):
        values, users = _bernoulli_users(n, 0.3)
        result = pooled_interval(values, users, seed=1)
        assert result.low <= result.value <= result.high
        widths.append(result.high - result.low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(4.0, rel=0.35)  # width ~ 1 / sqrt(n)


def test_a_user_in_several_weeks_is_one_resampling_unit():
    # 20 users, each evaluated in 10 weeks with the same value: 200 pairs but only 20 independent units,
    # so the interval must be as wide as that of 20 users, not of 200 independent pairs.
    values, users = _bernoulli_users(20, 0.5)
    clustered = pooled_interval(np.repeat(values, 10), np.repeat(users, 10), seed=0)
    independent = pooled_interval(np.repeat(values, 10), np.arange(200), seed=0)
    once = pooled_interval(values, users, seed=0)
    assert (clustered.n_users, clustered.n_pairs) == (20, 200)
    assert clustered.value == pytest.approx(0.5)
    assert clustered.high - clustered.low == pytest.approx(once.high - once.low, rel=0.2)
    assert clustered.high - clustered.low > 2 * (independent.high - independent.low)


def test_nan_values_are_left_out_and_one_user_has_no_interval():
    result = pooled_interval([0.5, np.nan, 0.25], [1, 2, 3])
    assert result.value == pytest.approx(0.375) and result.n_users == 2
    single = pooled_interval([0.5, 0.7], [4, 4])
    assert single.value == pytest.approx(0.6) and np.isnan(single.low) and single.n_users == 1


def _frame(values, users, weeks=None):
    return pd.DataFrame({"week": weeks if weeks is not None else 0, "user_id": users, "p": values})


def test_paired_difference_of_identical_systems_is_not_separable():
    values, users = _bernoulli_users(300, 0.2, seed=3)
    a = _frame(values, users)
    result = paired_difference(a, a.copy(), keys=["week", "user_id"], value="p", names=("x", "y"))
    assert result.difference.value == 0.0
    assert result.difference.low <= 0.0 <= result.difference.high
    assert result.verdict == NOT_SEPARABLE


def test_paired_difference_separates_a_clearly_better_system_in_both_directions():
    rng = np.random.default_rng(4)
    users = np.arange(300)
    base = rng.random(300) * 0.5
    better = _frame(base + 0.1 + 0.02 * rng.standard_normal(300), users)
    worse = _frame(base, users)
    result = paired_difference(better, worse, keys=["week", "user_id"], value="p", names=("new", "old"))
    assert result.verdict == "new beats old"
    assert result.difference.low > 0.05
    flipped = paired_difference(worse, better, keys=["week", "user_id"], value="p", names=("old", "new"))
    assert flipped.verdict == "new beats old"


def test_pairing_is_what_separates_a_small_consistent_gain():
    # a +0.02 gain on every user, hidden in a between-user spread of 0.3: unpaired intervals overlap, paired separate
    rng = np.random.default_rng(5)
    users = np.arange(200)
    base = rng.random(200) * 0.6
    a, b = _frame(base + 0.02, users), _frame(base, users)
    ia, ib = pooled_interval(a["p"], users), pooled_interval(b["p"], users)
    assert ia.low < ib.high  # the marginal intervals overlap
    assert paired_difference(a, b, keys=["week", "user_id"], value="p").verdict == "A beats B"


def test_paired_difference_uses_only_the_pairs_both_evaluated():
    a = _frame([1.0, 0.0, 1.0], [1, 2, 3], weeks=[0, 0, 1])
    b = _frame([0.0, 0.0], [1, 2], weeks=[0, 0])
    result = paired_difference(a, b, keys=["week", "user_id"], value="p")
    assert result.difference.n_pairs == 2 and result.difference.value == pytest.approx(0.5)
