"""The protocols of ``make compare`` on one week: every system's metric rows and per-user values.

:func:`compare_week` runs the weekly protocols (``standard``: the paper's, on the checkpoints, baselines, oracle rows
and peers; ``holdout``: 20% of the week's warm titles never trained on); :func:`compare_lightfm_holdout` runs the
LightFM paper's protocol per seed. Both take the peers' configs from the caller (``cli`` tunes them). Pure code.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rec_assets.model.inputs import WeekData
from rec_assets.evaluation.baselines import popularity_top_k, random_top_k
from rec_assets.evaluation.metrics import evaluate_segments
from rec_assets.model.train import TrainConfig
from rec_assets.peers.adapters import adapter, training_set
from rec_assets.peers.evaluate import (
    EvaluationContext, PeerScores, evaluate_scores, evaluation_context, fit_and_evaluate, not_applicable_frame,
    user_values,
)
from rec_assets.peers.holdout import (
    PopularityColumns, evaluate_lightfm_holdout, holdout_split, lightfm_holdout_split,
)

__all__ = ["COLUMNS", "LIGHTFM_COLUMNS", "LIGHTFM_METRICS", "PEERS", "PLATFORM_TRAINING", "PROTOCOLS",
           "WEEKLY_PROTOCOLS", "compare_lightfm_holdout", "compare_week", "peers_available"]

COLUMNS: tuple[str, ...] = (
    "system", "protocol", "candidate_set", "category", "metric", "value", "evaluated_users", "train_seconds",
    "score_seconds",
)
PEERS: tuple[str, ...] = ("als", "bpr", "lightfm")
WEEKLY_PROTOCOLS: tuple[str, ...] = ("standard", "holdout")
PROTOCOLS: tuple[str, ...] = (*WEEKLY_PROTOCOLS, "lightfm_holdout")
PEER_MODULES = {"als": "implicit", "bpr": "implicit", "lightfm": "lightfm"}
# The training settings of the tower assets (TrainingResource's defaults; a test keeps them equal), so a two-tower
# variant retrained here for the holdout protocol is trained as the platform trains it.
PLATFORM_TRAINING = TrainConfig(epochs=6, batch_size=512, patience=1, device="cpu")


def peers_available(peers: Sequence[str] = PEERS) -> tuple[list[str], list[str]]:
    """(installed, missing) among ``peers``; two-tower adapters are always installed."""
    installed, missing = [], []
    for peer in peers:
        module = PEER_MODULES.get(peer)
        (installed if module is None or importlib.util.find_spec(module) else missing).append(peer)
    return installed, missing


def _rows(frame: pd.DataFrame, system: str, protocol: str, train_seconds: float, score_seconds: float) -> pd.DataFrame:
    return frame.assign(system=system, protocol=protocol, train_seconds=train_seconds, score_seconds=score_seconds)


def _collect(per_user: list | None, hits: dict, ctx: EvaluationContext, system: str, protocol: str, k: int) -> None:
    """Append the per-user values of ``hits`` (segment -> UserHits over ``ctx.rows``) to ``per_user``."""
    if per_user is not None and hits:
        per_user.append(user_values(hits, ctx.users.user_ids, (k,)).assign(system=system, protocol=protocol))


def _baselines(ctx: EvaluationContext, history_counts: np.ndarray | None, protocol: str, k: int, seed: int,
               chunk_users: int, per_user: list | None = None) -> list[pd.DataFrame]:
    """Random and popularity through ``evaluation.baselines`` as ``evaluate_week`` calls them (same lists)."""
    frames = []
    started = time.perf_counter()
    lists = {s: random_top_k(len(ctx.rows), k, m, ctx.exclusion, seed=seed) for s, m in ctx.masks.items()}
    hits: dict = {}
    frames.append(_rows(evaluate_segments(lists, ctx.truth, ctx.masks, k, per_user=hits), "random", protocol, 0.0,
                        time.perf_counter() - started))
    _collect(per_user, hits, ctx, "random", protocol, k)
    if history_counts is None:  # no training view of the candidates: popularity cannot rank them
        frames.append(_rows(not_applicable_frame(ctx, list(ctx.masks), k), "popularity", protocol, math.nan,
                            math.nan))
    else:
        started = time.perf_counter()
        lists = {s: popularity_top_k(history_counts, len(ctx.rows), k, m, ctx.exclusion) for s, m in ctx.masks.items()}
        hits = {}
        frames.append(_rows(evaluate_segments(lists, ctx.truth, ctx.masks, k, per_user=hits), "popularity", protocol,
                            0.0, time.perf_counter() - started))
        _collect(per_user, hits, ctx, "popularity", protocol, k)
    return frames


def _evaluate_checkpoint(path: str, score: WeekData, ctx: EvaluationContext, k: int, chunk_users: int,
                         per_user: dict) -> tuple[pd.DataFrame, float]:
    """A checkpoint ranked as ``evaluation.week.evaluate_week`` ranks it (the evaluated users embedded in chunks of
    ``chunk_users``, ``rank_segments``, ``evaluate_segments``), keeping the per-user values."""
    from rec_assets.model.checkpoint import embed_items, embed_users, load_checkpoint

    started = time.perf_counter()
    model = load_checkpoint(path).model
    scores = PeerScores(embed_users(model, ctx.users, score.items, chunk_users), embed_items(model, score.items),
                        np.ones(score.items.n_titles, dtype=bool))
    frame = evaluate_scores(scores, ctx, k, chunk_users, user_rows=np.arange(len(ctx.rows)), per_user=per_user)
    return frame, time.perf_counter() - started


def compare_week(
    train: WeekData,
    score: WeekData,
    *,
    peers: Sequence[str] = PEERS,
    holdout_peers: Sequence[str] = (),
    standard_peers: Sequence[str] = (),
    configs: Mapping[str, Any] | None = None,
    protocols: Sequence[str] = WEEKLY_PROTOCOLS,
    checkpoints: Mapping[str, str] | None = None,
    checkpoint_train_seconds: Mapping[str, float] | None = None,
    popularity: PopularityColumns | None = None,
    holdout_share: float = 0.2,
    holdout_seed: int = 0,
    k: int = 6,
    seed: int = 0,
    chunk_users: int = 4096,
    baselines: bool = True,
    info: dict | None = None,
    per_user: list | None = None,
    oracle: Any = None,
    scoring_week: str | None = None,
) -> pd.DataFrame:
    """Metrics of every system on one week: columns :data:`COLUMNS`, one row per system, protocol, segment, metric.

    Args:
        train, score: the week's ``load_week(..., "train")`` and ``load_week(..., "score")``.
        peers: adapter names (``als``, ``bpr``, ``lightfm``, ``two_tower:<variant>`` to retrain a variant).
        holdout_peers: adapters evaluated under the holdout protocol only, after ``peers``: the two-tower variants
            retrained without the held-out titles (their standard-protocol rows come from the checkpoints).
        standard_peers: adapters evaluated under the standard protocol only, after ``peers`` (the type ablation).
        configs: peer name -> config (e.g. the tuned ones); default: each adapter's defaults.
        protocols: ``standard`` and/or ``holdout`` (the LightFM paper's protocol is :func:`compare_lightfm_holdout`).
        checkpoints: two-tower variant -> checkpoint path, ranked as ``evaluation.week.evaluate_week`` ranks them
            (standard protocol only: a checkpoint was trained on every title, so it cannot take part in the holdout
            protocol; retrain it with the ``two_tower:<variant>`` peer for that).
        checkpoint_train_seconds: variant -> training seconds to report (NaN when unknown).
        popularity: categorical columns reset for held-out titles (``holdout.popularity_columns``).
        info: filled with what the run saw (holdout split sizes, evaluated users), when given.
        per_user: when given, a list that receives one frame of per-user values per (system, protocol):
            ``peers.evaluate.user_values`` columns plus system and protocol (the pooled tables read them).
        oracle: the simulator's ``evaluation.oracle.OracleFactors`` (with ``scoring_week``): the oracle rows of the
            cold segments, ranked by ``oracle.oracle_top_k`` on the same users and truth (a ceiling, never a model).

    ALS/BPR cannot score titles without a training interaction: their cold and holdout rows are NaN with the
    segment's evaluated users (see ``peers.evaluate``). Seconds: fit (train) and embed + rank + metrics (score).
    """
    if not np.array_equal(train.users.user_ids, score.users.user_ids):
        raise ValueError("train and score phases must share the user rows (both read raw_users)")
    configs = dict(configs or {})
    unknown = set(protocols) - set(WEEKLY_PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocols {sorted(unknown)}")
    frames: list[pd.DataFrame] = []
    info = info if info is not None else {}

    if "standard" in protocols:
        ctx = evaluation_context(score)
        info["standard"] = {"evaluated_users": int(len(ctx.rows)),
                            "cold_titles": int(score.catalogue["is_cold_start"].sum()),
                            "warm_titles": int(score.catalogue["is_warm"].sum())}
        for variant, path in (checkpoints or {}).items():
            hits: dict = {}
            frame, score_s = _evaluate_checkpoint(path, score, ctx, k, chunk_users, hits)
            frames.append(_rows(frame, variant, "standard", (checkpoint_train_seconds or {}).get(variant, math.nan),
                                score_s))
            _collect(per_user, hits, ctx, variant, "standard", k)
        if baselines:
            frames += _baselines(ctx, score.history_counts, "standard", k, seed, chunk_users, per_user)
        if oracle is not None:
            from rec_assets.evaluation.oracle import linear_read_latent, oracle_top_k

            cold = {s: m for s, m in ctx.masks.items() if s[0] == "cold"}
            started = time.perf_counter()
            try:
                read = linear_read_latent(oracle, score.items, ~score.catalogue["is_cold_start"].to_numpy(bool))
                lists = oracle_top_k(oracle, ctx.users.user_ids, score.items.title_ids, cold, k,
                                     scoring_week=pd.Timestamp(scoring_week).date(), exclude=ctx.exclusion,
                                     chunk_users=chunk_users, read_latent=read)
            except ValueError as error:  # factors of another simulated world (preset, seed): say so, go on
                print(f"oracle rows skipped: {error}", file=sys.stderr)
                lists = {}
            for system, segments in lists.items():
                hits = {}
                frames.append(_rows(evaluate_segments(segments, ctx.truth, cold, k, per_user=hits), system,
                                    "standard", math.nan, time.perf_counter() - started))
                _collect(per_user, hits, ctx, system, "standard", k)
        training = training_set(train)
        for peer in [*peers, *(p for p in standard_peers if p not in peers)]:
            hits = {}
            frame, train_s, score_s = fit_and_evaluate(peer, configs.get(peer), training, score, ctx, k,
                                                       chunk_users=chunk_users, per_user=hits)
            frames.append(_rows(frame, peer, "standard", train_s, score_s))
            _collect(per_user, hits, ctx, peer, "standard", k)

    if "holdout" in protocols:
        split = holdout_split(train, score, popularity, share=holdout_share, seed=holdout_seed)
        info["holdout"] = split.summary()
        ctx = split.context
        if baselines:
            frames += _baselines(ctx, None, "holdout", k, seed, chunk_users, per_user)
        for peer in [*peers, *(p for p in holdout_peers if p not in peers)]:
            if not adapter(peer).scores_cold:
                frames.append(_rows(not_applicable_frame(ctx, list(ctx.masks), k), peer, "holdout", math.nan,
                                    math.nan))
                continue
            hits = {}
            frame, train_s, score_s = fit_and_evaluate(peer, configs.get(peer), split.training, score, ctx, k,
                                                       chunk_users=chunk_users, embed_users=split.score_users,
                                                       embed_items=split.score_items, per_user=hits)
            frames.append(_rows(frame, peer, "holdout", train_s, score_s))
            _collect(per_user, hits, ctx, peer, "holdout", k)

    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(COLUMNS)]


LIGHTFM_COLUMNS: tuple[str, ...] = ("seed", "system", "category", "metric", "value", "evaluated_users",
                                    "train_seconds", "score_seconds")
LIGHTFM_METRICS: tuple[str, ...] = ("auc", "p@6", "r@6", "r@20")


def compare_lightfm_holdout(
    train: WeekData,
    score: WeekData,
    *,
    systems: Sequence[str],
    configs: Mapping[str, Any] | None = None,
    popularity: PopularityColumns | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    share: float = 0.2,
    chunk_users: int = 4096,
    info: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The LightFM paper's protocol (``peers.holdout.lightfm_holdout_split``) on one week, for each seed.

    ``systems``: adapters trained on each seed's training set (``lightfm``, ``two_tower:<variant>``; one that cannot
    score titles without interactions, e.g. ``als``, gets n/a rows); ``random`` and ``popularity`` (n/a: a held-out
    title has no popularity) are always added. Returns (per-seed means: :data:`LIGHTFM_COLUMNS`, per-user values:
    seed, system, category, user_id, n_truth, p@k, r@k, auc).
    """
    configs = dict(configs or {})
    info = info if info is not None else {}
    means, users = [], []
    for seed in seeds:
        split = lightfm_holdout_split(train, score, popularity, share=share, seed=seed)
        info[str(seed)] = split.summary()
        started = time.perf_counter()
        random_values = evaluate_lightfm_holdout(split, None, random_seed=seed, chunk_users=chunk_users)
        results = {"random": (random_values, 0.0, time.perf_counter() - started)}
        evaluated = random_values.groupby("category").size()
        for system in ["popularity", *systems]:
            if system == "popularity" or not adapter(system).scores_cold:
                results[system] = (None, math.nan, math.nan)
                continue
            peer = adapter(system)
            started = time.perf_counter()
            fitted = peer.fit(split.training, configs[system]) if configs.get(system) is not None \
                else peer.fit(split.training)
            train_s = time.perf_counter() - started
            started = time.perf_counter()
            values = evaluate_lightfm_holdout(split, fitted.embed(split.score_items, split.score_users),
                                              chunk_users=chunk_users)
            results[system] = (values, train_s, time.perf_counter() - started)
            print(f"lightfm_holdout seed {seed}: {system} trained in {train_s:.1f} s", flush=True)
        for system, (values, train_s, score_s) in results.items():
            for category, n in evaluated.items():
                for metric in LIGHTFM_METRICS:
                    if values is None:
                        value = math.nan
                    else:
                        column = values.loc[values["category"] == category, metric]
                        value = float(column.mean()) if column.notna().any() else math.nan
                    means.append((seed, system, category, metric, value, int(n), train_s, score_s))
            if values is not None:
                users.append(values.assign(seed=seed, system=system))
    per_user = pd.concat(users, ignore_index=True) if users else pd.DataFrame()
    return pd.DataFrame(means, columns=list(LIGHTFM_COLUMNS)), per_user

