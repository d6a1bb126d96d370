"""The oracle ceilings: rankings by the stored hidden factors, and a file that only the oracle reads."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from rec_assets.evaluation.oracle import (LINEAR_READ_SYSTEM, ORACLE_SYSTEMS, linear_read_latent,
                                         load_oracle_factors, oracle_top_k)
from rec_assets.evaluation.scoring import CSR
from rec_assets.model.data import ItemFeatures
from rec_assets.sources.simulator import ORACLE_FILE, write_oracle_factors

PACKAGE = Path(__file__).resolve().parents[2] / "rec_assets"
FIRST_DAY = date(2024, 9, 2)
PARTS = {"categorical": (0, 2), "synopsis": (2, 3), "cover_art": (3, 4), "idiosyncratic": (4, 6)}


def hand_made(tmp_path: Path, seed: int = 0, n_titles: int = 12) -> Path:
    """5 users x 12 titles with random factors, titles 9-12 acquired in week 10 (the scoring week) with a boost."""
    rng = np.random.default_rng(seed)
    n_users = 5
    acquisition_day = np.where(np.arange(n_titles) >= 8, 70, 0)
    write_oracle_factors(tmp_path / ORACLE_FILE, {
        "user_id": np.arange(101, 101 + n_users),
        "title_id": np.arange(1, n_titles + 1) * 10,
        "user_taste": rng.normal(size=(n_users, 6)).astype(np.float32),
        "title_latent": rng.normal(size=(n_titles, 6)).astype(np.float32),
        "affinity_weights": np.array([1.0, 1.0, 0.8, 0.6, 0.8, 0.8], dtype=np.float32),
        "part_names": np.array(list(PARTS)),
        "part_bounds": np.array(list(PARTS.values())),
        "title_log_popularity": rng.normal(size=n_titles).astype(np.float32),
        "title_novelty_boost": np.where(np.arange(n_titles) >= 10, 1.0, 3.0),
        "title_acquisition_day": acquisition_day,
        "first_day": np.array(FIRST_DAY.isoformat()),
        "novelty_decay_weeks": np.array(2.0),
    })
    return tmp_path


def stored_logit(path: Path, system: str, week: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logit [users, titles], user ids, title ids) recomputed from the raw file, the way the simulator chooses."""
    with np.load(path / ORACLE_FILE) as f:
        parts, with_prior = ORACLE_SYSTEMS[system]
        dims = np.concatenate([np.arange(*PARTS[p]) for p in parts])
        taste, latent, weights = f["user_taste"].astype(np.float64), f["title_latent"].astype(np.float64), \
            f["affinity_weights"].astype(np.float64)
        logit = (taste[:, dims] * weights[dims]) @ latent[:, dims].T
        if with_prior:
            age = (week - FIRST_DAY).days // 7 - f["title_acquisition_day"] // 7
            logit = logit + f["title_log_popularity"] + f["title_novelty_boost"] * np.exp(-age / 2.0)
        return logit, f["user_id"], f["title_id"]


def test_the_oracle_ranking_is_the_argsort_of_the_stored_affinity(tmp_path):
    path = hand_made(tmp_path)
    factors = load_oracle_factors(path)
    week = FIRST_DAY + timedelta(weeks=10)
    # The week's users in another order, and a title space that is a shuffled subset of the file's titles.
    user_ids = np.array([104, 101, 105, 102])
    title_ids = np.array([120, 10, 90, 110, 30, 100, 40, 70, 120 - 70, 60])
    is_tv = np.array([0, 0, 1, 0, 1, 0, 0, 1, 0, 0], dtype=bool)
    cold = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 1], dtype=bool)
    masks = {("cold", "movie"): cold & ~is_tv, ("cold", "tv"): cold & is_tv}
    # User row 1 (id 101) already watched title row 0: it must never come back.
    exclude = CSR.from_pairs([1], [0], len(user_ids))
    k = 3
    lists = oracle_top_k(factors, user_ids, title_ids, masks, k, scoring_week=week, exclude=exclude)
    assert set(lists) == {"oracle_metadata", "oracle_all"}
    for system, segments in lists.items():
        logit, stored_users, stored_titles = stored_logit(path, system, week)
        logit = logit[np.searchsorted(stored_users, user_ids)][:, np.searchsorted(stored_titles, title_ids)]
        for segment, mask in masks.items():
            for row in range(len(user_ids)):
                allowed = mask.copy()
                allowed[exclude.row(row)] = False
                candidates = np.flatnonzero(allowed)
                expected = candidates[np.argsort(-logit[row, candidates], kind="stable")][:k]
                got = segments[segment][row]
                assert got[: len(expected)].tolist() == expected.tolist(), (system, segment, row)
                assert np.all(got[len(expected):] == -1)
    # The two systems differ (idiosyncratic part, popularity, novelty) on this case.
    assert not np.array_equal(lists["oracle_metadata"][("cold", "movie")], lists["oracle_all"][("cold", "movie")])


def test_no_oracle_file_means_no_factors_and_unknown_ids_are_refused(tmp_path):
    assert load_oracle_factors(tmp_path) is None
    factors = load_oracle_factors(hand_made(tmp_path))
    mask = {("cold", "movie"): np.ones(2, dtype=bool)}
    with pytest.raises(ValueError, match="lacks some user ids"):
        oracle_top_k(factors, np.array([999]), np.array([10, 20]), mask, 1, scoring_week=FIRST_DAY)
    with pytest.raises(ValueError, match="lacks some title ids"):
        oracle_top_k(factors, np.array([101]), np.array([10, 15]), mask, 1, scoring_week=FIRST_DAY)


# Who may name the oracle file or its reader: the simulator writes it, the oracle reads it, the evaluation asset
# turns the oracle's lists into metric rows. No feature, split, model, tower or peer code may.
# the writer, the reader, the two evaluations that rank the oracle rows (the asset, and make compare, which
# needs them per user for its intervals), and the ceiling's diagnostic; no feature, model or training module
_ALLOWED = {"sources/simulator/__init__.py", "sources/simulator/generator.py", "evaluation/oracle.py",
            "defs/evaluation.py", "bench/compare/cli.py", "bench/compare/inputs.py", "bench/compare/protocols.py",
            "bench/feature_read.py"}
_TOKENS = re.compile(r"ORACLE_FILE|oracle_factors|load_oracle_factors|evaluation\.oracle|evaluation import oracle|"
                     r"write_oracle_factors|oracle_arrays|generate_hidden|HiddenFactors")


def test_only_the_oracle_reads_the_hidden_factors():
    offenders = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if _TOKENS.search(path.read_text(encoding="utf-8")) and path.relative_to(PACKAGE).as_posix() not in _ALLOWED
    )
    assert offenders == []
    # Inside the evaluation asset the factors go to evaluate_oracles only.
    evaluation_asset = (PACKAGE / "defs" / "evaluation.py").read_text(encoding="utf-8")
    body = evaluation_asset.split("def evaluation_metrics(")[1]
    uses = [line for line in body.splitlines() if re.search(r"\boracle\b", line)]
    assert all("oracle_factors_for" in u or "evaluate_oracles" in u or "oracle is not None" in u for u in uses), uses


def _items(title_ids: np.ndarray, synopsis: np.ndarray, popularity_bin: np.ndarray) -> ItemFeatures:
    """Titles whose synopsis vectors are the given ones, no cover art, and one categorical column: a popularity bin."""
    n = len(title_ids)
    rows = np.flatnonzero(popularity_bin)
    offsets = np.concatenate([[0], np.cumsum(popularity_bin.astype(np.int64))])
    return ItemFeatures(title_ids=title_ids, is_tv=np.zeros(n, bool), categorical_offsets=offsets,
                        categorical_indices=np.zeros(len(rows), np.int64), categorical_width=1,
                        synopsis=synopsis.astype(np.float32), synopsis_missing=np.zeros(n, bool),
                        cover_art=np.zeros((n, 2), np.float32), cover_art_missing=np.zeros(n, bool),
                        id_known=np.ones(n, bool), interaction_columns=np.array([0]))


def test_the_linear_read_recovers_title_factors_the_features_carry_and_ignores_popularity_bins(tmp_path):
    factors = load_oracle_factors(hand_made(tmp_path, n_titles=200))
    rng = np.random.default_rng(1)
    metadata_dims = np.arange(0, 4)  # categorical, synopsis and cover-art parts of PARTS
    mixing = rng.normal(size=(4, 4))
    # Only the popular titles carry the bin; the last fifty titles are the week's cold ones, left out of the fit.
    items = _items(factors.title_ids, factors.title_latent[:, metadata_dims] @ mixing, np.arange(200) % 2 == 0)
    fit = np.arange(200) < 150
    read = linear_read_latent(factors, items, fit)
    assert read.shape == factors.title_latent.shape
    assert np.allclose(read[:, metadata_dims], factors.title_latent[:, metadata_dims], atol=0.05)
    assert np.all(read[:, 4:] == 0)  # the idiosyncratic part: no metadata carries it


def test_the_linear_read_ranks_by_the_true_taste_and_the_read_factors(tmp_path):
    factors = load_oracle_factors(hand_made(tmp_path))
    masks = {("cold", "movie"): np.arange(12) >= 4}
    exact = factors.title_latent.astype(np.float64) * (np.arange(6) < 4)  # a read as good as the truth
    lists = oracle_top_k(factors, factors.user_ids, factors.title_ids, masks, 3, scoring_week=FIRST_DAY,
                         read_latent=exact)
    assert set(lists) == {*ORACLE_SYSTEMS, LINEAR_READ_SYSTEM}
    assert np.array_equal(lists[LINEAR_READ_SYSTEM][("cold", "movie")], lists["oracle_metadata"][("cold", "movie")])
    reversed_read = oracle_top_k(factors, factors.user_ids, factors.title_ids, masks, 3, scoring_week=FIRST_DAY,
                                 read_latent=-exact)[LINEAR_READ_SYSTEM][("cold", "movie")]
    assert not np.array_equal(reversed_read, lists["oracle_metadata"][("cold", "movie")])


def test_features_that_carry_nothing_read_every_cold_title_alike(tmp_path):
    factors = load_oracle_factors(hand_made(tmp_path))
    rng = np.random.default_rng(2)
    items = _items(factors.title_ids, rng.normal(size=(12, 3)), np.zeros(12, bool))
    read = linear_read_latent(factors, items, np.arange(12) < 8)
    spread = read[8:, :4].std(axis=0)
    assert np.all(spread < 0.5 * factors.title_latent[:, :4].std(axis=0))  # the penalty shrinks noise to the mean
