"""Peer adapters (implicit ALS / BPR, LightFM) go through the two-tower evaluation code; holdout and tuning rules.

Runs on a small synthetic week (``synthetic.py``); tests that need a peer library skip without the ``peers`` extra.
``REC_COMPARE_HOME`` (a REC_HOME with a materialised week) additionally runs ``compare.cli.main`` end to end.
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from rec_assets.bench.compare.cli import main
from rec_assets.bench.compare.protocols import COLUMNS, compare_week
from rec_assets.evaluation.metrics import METRICS
from rec_assets.evaluation.week import evaluate_week
from rec_assets.peers.adapters import PeerScores, TrainingSet, training_set
from rec_assets.peers.evaluate import evaluate_fitted, evaluation_context
from rec_assets.peers.holdout import HOLDOUT, holdout_split, popularity_columns
from rec_assets.peers.tuning import tune, validation_split
from rec_assets_tests.peers.synthetic import NO_VIEWS, POPULARITY_BINS, VOCABULARY, synthetic_week

SEGMENTS = {("warm", "movie"), ("warm", "tv"), ("cold", "movie"), ("cold", "tv")}


@pytest.fixture(scope="module")
def week():
    return synthetic_week()


def _key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index(["candidate_set", "category", "metric"]).sort_index()


def _reference(score) -> pd.DataFrame:
    """What the two-tower evaluation (``evaluate_week``) reports for the week: the baselines' rows."""
    return evaluate_week(score, {}, k=6, seed=0).metrics


# --- the evaluation path itself (no peer library needed) ---------------------------------------------------------


def test_baselines_through_compare_equal_evaluate_week(week):
    train, score = week
    frame = compare_week(train, score, peers=[], protocols=["standard"])
    assert list(frame.columns) == list(COLUMNS)
    reference = _reference(score)
    for system in ("random", "popularity"):
        ours = _key(frame[frame.system == system])
        theirs = _key(reference[reference.variant == system])
        pd.testing.assert_series_equal(ours["value"], theirs["value"])
        pd.testing.assert_series_equal(ours["evaluated_users"], theirs["evaluated_users"])


@dataclass
class _Oracle:
    """A fake fitted peer: scores each user's Y' titles 1, everything else 0; titles in ``hidden`` unscorable."""

    score: object
    hidden: np.ndarray
    name: str = "oracle"
    config: object = None

    def embed(self, items, users):
        n_users, n_titles = users.n_users, items.n_titles
        user_emb = np.zeros((n_users, n_titles), np.float32)
        user_emb[self.score.labels.user_rows, self.score.labels.title_rows] = 1.0
        return PeerScores(user_emb, np.eye(n_titles, dtype=np.float32), ~self.hidden)


def test_unscorable_titles_are_never_ranked_but_stay_in_the_truth(week):
    _, score = week
    ctx = evaluation_context(score)
    hidden = np.zeros(score.items.n_titles, bool)
    frame, _ = evaluate_fitted(_Oracle(score, hidden), score, ctx)
    warm = _key(frame).loc[("warm", "movie")]
    assert warm.loc["recall", "value"] == pytest.approx(1.0)  # the oracle finds every new watch
    # Hide half of the warm movies: recall drops below 1 (their watches still count), lists never name them.
    warm_movies = np.flatnonzero(ctx.masks[("warm", "movie")])
    hidden[warm_movies[::2]] = True
    frame2, _ = evaluate_fitted(_Oracle(score, hidden), score, ctx)
    warm2 = _key(frame2).loc[("warm", "movie")]
    assert warm2.loc["recall", "value"] < 1.0
    assert warm2.loc["recall", "evaluated_users"] == warm.loc["recall", "evaluated_users"]
    # Hide every cold title: the cold segments become "not applicable" with the usual evaluated users.
    hidden = score.catalogue["is_cold_start"].to_numpy(bool)
    frame3 = _key(evaluate_fitted(_Oracle(score, hidden), score, ctx)[0])
    reference = _key(_reference(score).query("variant == 'random'"))
    for category in ("movie", "tv"):
        rows = frame3.loc[("cold", category)]
        assert rows["value"].isna().all()
        assert (rows["evaluated_users"] == reference.loc[("cold", category), "evaluated_users"]).all()


# --- each peer through the same evaluation -----------------------------------------------------------------------


PEER_LIBRARIES = [("als", "implicit"), ("bpr", "implicit"), ("lightfm", "lightfm")]


@pytest.mark.parametrize("peer,library", PEER_LIBRARIES)
def test_peer_metrics_come_from_the_same_evaluation(week, peer, library):
    pytest.importorskip(library)
    train, score = week
    frame = compare_week(train, score, peers=[peer], protocols=["standard"], baselines=False)
    assert list(frame.columns) == list(COLUMNS)
    assert set(frame.system) == {peer} and set(frame.protocol) == {"standard"}
    reference = _reference(score).query("variant == 'random'")
    # Same segments, same metrics, same evaluated users as the two-tower variants get from evaluate_week.
    assert set(zip(frame.candidate_set, frame.category)) == SEGMENTS
    assert _key(frame).index.equals(_key(reference).index)
    assert (_key(frame)["evaluated_users"] == _key(reference)["evaluated_users"]).all()
    assert set(frame.metric) == set(METRICS)
    warm = frame[frame.candidate_set == "warm"]
    assert warm["value"].notna().all()
    assert (frame["train_seconds"] > 0).all() and (frame["score_seconds"] > 0).all()
    # The taste groups are learnable: the peer beats random on warm movies.
    recall = _key(frame).loc[("warm", "movie", "recall"), "value"]
    assert recall > _key(reference).loc[("warm", "movie", "recall"), "value"]


@pytest.mark.parametrize("peer", ["als", "bpr"])
def test_als_and_bpr_mark_cold_and_holdout_not_applicable(week, peer):
    pytest.importorskip("implicit")
    train, score = week
    frame = compare_week(train, score, peers=[peer], protocols=["standard", "holdout"], baselines=True,
                         popularity=popularity_columns(VOCABULARY))
    mine = frame[frame.system == peer]
    cold = mine[(mine.protocol == "standard") & (mine.candidate_set == "cold")]
    assert len(cold) == 2 * len(METRICS) and cold["value"].isna().all()
    random_cold = frame[(frame.system == "random") & (frame.protocol == "standard") & (frame.candidate_set == "cold")]
    assert (cold["evaluated_users"].to_numpy() == random_cold["evaluated_users"].to_numpy()).all()
    assert cold["evaluated_users"].max() > 0
    held = mine[mine.protocol == "holdout"]
    assert set(held.candidate_set) == {HOLDOUT} and held["value"].isna().all()
    assert held["train_seconds"].isna().all()


def test_lightfm_scores_cold_and_holdout_titles(week):
    pytest.importorskip("lightfm")
    train, score = week
    frame = compare_week(train, score, peers=["lightfm"], protocols=["standard", "holdout"], baselines=False,
                         popularity=popularity_columns(VOCABULARY))
    for protocol, cset in (("standard", "cold"), ("holdout", HOLDOUT)):
        rows = frame[(frame.protocol == protocol) & (frame.candidate_set == cset) & (frame.evaluated_users > 0)]
        assert len(rows) and rows["value"].notna().all()


def test_training_set_is_x_union_y(week):
    train, _ = week
    ts = training_set(train)
    assert isinstance(ts, TrainingSet)
    dense = ts.matrix.toarray()
    hist_users = np.repeat(np.arange(train.users.n_users), np.diff(train.users.history_offsets))
    assert (dense[hist_users, train.users.history_items] >= 1).all()
    assert (dense[train.labels.user_rows, train.labels.title_rows] >= 1).all()
    assert dense.sum() == len(train.users.history_items) + len(train.labels)
    assert not ts.trainable[train.catalogue["is_cold_start"].to_numpy(bool)].any()


# --- the item-holdout protocol -----------------------------------------------------------------------------------


def test_holdout_holds_out_a_fifth_of_the_titles_and_trains_on_none_of_them(week):
    train, score = week
    split = holdout_split(train, score, popularity_columns(VOCABULARY), share=0.2, seed=0)
    held = split.held_out
    eligible = score.catalogue["is_warm"].to_numpy(bool)
    is_tv = score.items.is_tv
    for category in (~is_tv, is_tv):
        assert held[category].sum() == round(0.2 * (eligible & category).sum())
    assert not held[~eligible].any()  # cold-start titles are not part of the split
    # No interaction of a held-out title reaches training in any form.
    assert split.training.matrix[:, held].nnz == 0
    assert not held[split.training.positives.title_rows].any()
    assert not held[split.training.users.history_items].any()
    assert not split.training.trainable[held].any() and not split.training.items.id_known[held].any()
    assert not held[split.score_users.history_items].any()
    # Their popularity bits read "never watched", in training and scoring features alike.
    for items in (split.training.items, split.score_items):
        for row in np.flatnonzero(held):
            bits = items.categorical_indices[items.categorical_offsets[row]:items.categorical_offsets[row + 1]]
            assert NO_VIEWS in bits and not set(POPULARITY_BINS) & set(bits.tolist())
    # Everything else is untouched; the split is a function of the seed.
    kept = ~held
    assert split.training.matrix[:, kept].sum() == training_set(train).matrix[:, kept].sum()
    again = holdout_split(train, score, popularity_columns(VOCABULARY), share=0.2, seed=0)
    assert np.array_equal(again.held_out, held)
    assert not np.array_equal(holdout_split(train, score, None, share=0.2, seed=1).held_out, held)
    # Candidates are the held-out titles, truth their new Y' watches.
    assert set(split.context.masks) == {(HOLDOUT, "movie"), (HOLDOUT, "tv")}
    assert np.array_equal(split.context.masks[(HOLDOUT, "movie")] | split.context.masks[(HOLDOUT, "tv")], held)


# --- the LightFM paper's protocol (20% of all titles, truth in X' and Y') -------------------------------------


def _lightfm_split(week, seed=0):
    from rec_assets.peers.holdout import lightfm_holdout_split

    train, score = week
    return lightfm_holdout_split(train, score, popularity_columns(VOCABULARY), share=0.2, seed=seed)


def test_lightfm_protocol_holds_out_a_fifth_of_all_titles_and_trains_on_none_of_them(week):
    from rec_assets.peers.holdout import interacted_titles

    train, score = week
    split = _lightfm_split(week)
    held, is_tv = split.held_out, score.items.is_tv
    eligible = interacted_titles(train, score)
    for category in (~is_tv, is_tv):
        assert held[category].sum() == round(0.2 * (eligible & category).sum())
    assert not held[~eligible].any()
    # no event, no label, no matrix column, no ID of a held-out title reaches training ...
    assert split.training.matrix[:, held].nnz == 0
    assert not held[split.training.positives.title_rows].any()
    assert not held[split.training.users.history_items].any()
    assert not split.training.trainable[held].any() and not split.training.items.id_known[held].any()
    assert not split.score_items.id_known[held].any()
    # ... nor any popularity bit, in training or scoring features
    for items in (split.training.items, split.score_items):
        for row in np.flatnonzero(held):
            bits = items.categorical_indices[items.categorical_offsets[row]:items.categorical_offsets[row + 1]]
            assert NO_VIEWS in bits and not set(POPULARITY_BINS) & set(bits.tolist())
    # the user tower's input at scoring has no held-out title either
    assert not held[split.score_users.history_items].any()
    assert np.array_equal(_lightfm_split(week).held_out, held)
    assert not np.array_equal(_lightfm_split(week, seed=1).held_out, held)


def test_lightfm_protocol_truth_is_the_held_out_watches_of_x_prime_and_y_prime(week):
    _, score = week
    split = _lightfm_split(week)
    held = split.held_out
    truth = set(zip(split.rows[split.truth[0]].tolist(), split.truth[1].tolist()))
    assert truth and all(held[t] for _, t in truth)  # only held-out titles
    hist_users = np.repeat(np.arange(score.users.n_users), np.diff(score.users.history_offsets))
    expected = {(u, t) for u, t in zip(hist_users.tolist(), score.users.history_items.tolist()) if held[t]}
    expected |= {(u, t) for u, t in zip(score.labels.user_rows.tolist(), score.labels.title_rows.tolist()) if held[t]}
    assert truth == expected
    assert split.rows.tolist() == sorted({u for u, _ in expected})
    assert set(split.masks) == {("lightfm_holdout", c) for c in ("movie", "tv", "all")}
    assert np.array_equal(split.masks[("lightfm_holdout", "all")], held)


def test_lightfm_protocol_auc_of_a_perfect_scorer_is_one_and_of_a_reversed_one_zero(week):
    from rec_assets.peers.holdout import evaluate_lightfm_holdout

    _, score = week
    split = _lightfm_split(week)
    n_titles = score.items.n_titles
    user_emb = np.zeros((score.users.n_users, n_titles), np.float32)
    user_emb[split.rows[split.truth[0]], split.truth[1]] = 1.0  # each user's truth scores 1, the rest 0
    items = np.eye(n_titles, dtype=np.float32)
    scorable = np.ones(n_titles, bool)
    perfect = evaluate_lightfm_holdout(split, PeerScores(user_emb, items, scorable))
    reversed_ = evaluate_lightfm_holdout(split, PeerScores(-user_emb, items, scorable))
    random = evaluate_lightfm_holdout(split, None, random_seed=0)
    for frame in (perfect, reversed_, random):
        assert set(frame["category"]) == {"movie", "tv", "all"}
        assert (frame["n_truth"] > 0).all()
    defined = perfect["auc"].notna()
    assert defined.mean() > 0.9 and (perfect.loc[defined, "auc"] == 1.0).all()
    assert (reversed_.loc[defined, "auc"] == 0.0).all()
    assert (perfect["r@20"] >= perfect["r@6"]).all()
    assert perfect["r@6"].mean() > random["r@6"].mean()
    assert 0.3 < random["auc"].mean() < 0.7
    all_users = perfect[perfect["category"] == "all"]
    assert len(all_users) == len(split.rows)


# --- tuning ------------------------------------------------------------------------------------------------------


def test_tuning_reads_the_training_phase_only(week):
    train, score = week
    assert "score" not in inspect.signature(tune).parameters
    split = validation_split(train)
    # Fits on X alone; validates on Y (train.labels), never on Y' (score.labels).
    hist_users = np.repeat(np.arange(train.users.n_users), np.diff(train.users.history_offsets))
    assert split.training.matrix.sum() == len(train.users.history_items)
    assert split.training.matrix.nnz == len(set(zip(hist_users.tolist(), train.users.history_items.tolist())))
    assert split.data.labels is train.labels
    ctx = evaluation_context(split.data)
    truth = set(zip(ctx.rows[ctx.truth[0]].tolist(), ctx.truth[1].tolist()))
    assert truth <= set(zip(train.labels.user_rows.tolist(), train.labels.title_rows.tolist()))
    yp = set(zip(score.labels.user_rows.tolist(), score.labels.title_rows.tolist()))
    assert not (truth & yp - set(zip(train.labels.user_rows.tolist(), train.labels.title_rows.tolist())))


def test_tuning_picks_from_the_grid_and_ignores_evaluation_labels():
    pytest.importorskip("implicit")
    train, score = synthetic_week()  # its own copy: the evaluation labels get scrambled below
    grid = {"factors": [4, 8], "regularization": [0.01], "iterations": [5], "alpha": [10.0]}
    result = tune("als", train, grid)
    assert len(result.trials) == 2 and result.chosen.factors in (4, 8)
    assert result.objective == pytest.approx(result.trials["objective"].max())
    # Scrambling the evaluation week's labels cannot change anything: tuning never receives them.
    score.labels.title_rows[:] = score.labels.title_rows[::-1]
    again = tune("als", train, grid)
    pd.testing.assert_frame_equal(result.trials.drop(columns="seconds"), again.trials.drop(columns="seconds"))
    json.dumps(result.to_dict(), default=str)


def test_lightfm_tuning_stages_equal_fresh_fits(week):
    pytest.importorskip("lightfm")
    from rec_assets.peers.adapters import LightFMAdapter, LightFMConfig

    train, _ = week
    split = validation_split(train)
    config = LightFMConfig(no_components=8, epochs=3)
    staged = dict(LightFMAdapter().fit_stages(split.training, config, (1, 3)))
    fresh = LightFMAdapter().fit(split.training, config)
    a = staged[3].embed(train.items, train.users)
    b = fresh.embed(train.items, train.users)
    np.testing.assert_allclose(a.item_embeddings, b.item_embeddings, rtol=1e-5, atol=1e-6)


# --- end to end on a materialised REC_HOME (optional) ------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("REC_COMPARE_HOME"), reason="set REC_COMPARE_HOME to a materialised REC_HOME")
def test_compare_main_end_to_end(tmp_path):
    pytest.importorskip("implicit")
    pytest.importorskip("lightfm")
    assert main(["--rec-home", os.environ["REC_COMPARE_HOME"], "--grid", "small", "--max-weeks", "1",
                 "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "compare.json").read_text())["results"]
    assert {r["system"] for r in results} >= {"als", "bpr", "lightfm", "random", "popularity"}
    assert "## standard protocol, warm titles" in (tmp_path / "compare.md").read_text()
