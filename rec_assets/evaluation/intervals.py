"""Pooled per-user metrics with 95% bootstrap intervals over users, and paired bootstrap comparisons.

A pooled metric is the mean over every evaluated (user, week) pair. Users are the resampling unit: a user evaluated
in several weeks (or seeds) is one cluster, so the intervals do not treat one user's weeks as independent. Each
cluster is reduced to (sum of its values, number of pairs) and ``scipy.stats.bootstrap`` resamples those rows jointly
(``paired=True``, vectorized); the statistic is sum / count over the resampled users (percentile intervals, seeded).
:func:`paired_difference` does the same with the per-pair difference of two systems on the same pairs and gives
a verdict: "A beats B", "B beats A", or "not separable" when the difference's interval contains 0.

Pure code: no dagster import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import bootstrap

__all__ = ["Comparison", "Interval", "NOT_SEPARABLE", "paired_difference", "pooled_interval", "verdict"]

CONFIDENCE = 0.95
N_RESAMPLES = 2000
NOT_SEPARABLE = "not separable"


@dataclass(frozen=True)
class Interval:
    value: float  # pooled mean over the (user, week) pairs
    low: float
    high: float
    n_users: int  # distinct users (clusters)
    n_pairs: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    difference: Interval  # pooled mean of a - b over the shared pairs
    verdict: str

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, **self.difference.to_dict(), "verdict": self.verdict}


def _ratio(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    return sums.sum(axis=axis) / counts.sum(axis=axis)


def _clustered(values: np.ndarray, clusters: np.ndarray, confidence: float, n_resamples: int, seed: int) -> Interval:
    values = np.asarray(values, dtype=np.float64).ravel()
    clusters = np.asarray(clusters).ravel()
    if values.shape != clusters.shape:
        raise ValueError(f"values and clusters differ in length: {values.size} vs {clusters.size}")
    keep = ~np.isnan(values)
    values, clusters = values[keep], clusters[keep]
    if values.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, 0)
    _, cluster = np.unique(clusters, return_inverse=True)
    sums = np.bincount(cluster, weights=values)
    counts = np.bincount(cluster).astype(np.float64)
    value = float(values.mean())
    if len(sums) < 2 or np.all(values == values[0]):  # no spread to resample: the interval is the value itself
        low = high = value if len(sums) >= 2 else float("nan")
    else:
        result = bootstrap((sums, counts), _ratio, paired=True, vectorized=True, confidence_level=confidence,
                           n_resamples=n_resamples, method="percentile", batch=250,
                           rng=np.random.default_rng(seed))
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Interval(value, low, high, int(len(sums)), int(values.size))


def pooled_interval(values, users, *, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                    seed: int = 0) -> Interval:
    """Pooled mean of per-(user, week) ``values`` with a bootstrap interval over ``users`` (the cluster of each
    value). NaN values (no evaluation) are dropped; fewer than two users give a NaN interval."""
    return _clustered(values, users, confidence, n_resamples, seed)


def verdict(difference: Interval, a: str = "A", b: str = "B") -> str:
    if np.isnan(difference.low) or np.isnan(difference.high):
        return NOT_SEPARABLE
    if difference.low > 0:
        return f"{a} beats {b}"
    if difference.high < 0:
        return f"{b} beats {a}"
    return NOT_SEPARABLE


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, *, keys: list[str], value: str, cluster: str = "user_id",
                      names: tuple[str, str] = ("A", "B"), confidence: float = CONFIDENCE,
                      n_resamples: int = N_RESAMPLES, seed: int = 0) -> Comparison:
    """Paired bootstrap of the pooled difference A - B of column ``value`` on the pairs (rows identified by ``keys``,
    which include ``cluster``) that both systems evaluated, resampling clusters (users)."""
    if cluster not in keys:
        raise ValueError(f"keys must include the cluster column {cluster!r}")
    joined = a[keys + [value]].merge(b[keys + [value]], on=keys, suffixes=("_a", "_b"), validate="one_to_one")
    joined = joined.dropna(subset=[f"{value}_a", f"{value}_b"])
    diff = _clustered((joined[f"{value}_a"] - joined[f"{value}_b"]).to_numpy(), joined[cluster].to_numpy(),
                      confidence, n_resamples, seed)
    return Comparison(names[0], names[1], diff, verdict(diff, *names))
