"""Two-tower variants vs peers (implicit ALS / BPR, LightFM) and baselines; ``--help`` lists the scoping options.

    .venv/bin/python -m rec_assets.bench.compare --weeks 2026-11-02 --grid small --seeds 2 --out /tmp/compare

Per materialised week (``datasets.load_week``), protocols: ``standard`` (the paper's: train X -> Y, score X' -> Y',
warm and cold-start candidates; variants from their checkpoints), ``holdout`` (20% of the week's warm titles never
trained on, ``peers.holdout``), and ``lightfm_holdout`` (the LightFM paper's: 20% of all titles, per seed, on the last
week). Metrics per user (``evaluation.metrics``), pooled over (user, week) pairs with 95% bootstrap intervals over
users and paired comparisons (``evaluation.intervals``). Peers (an extra, ``.[peers]``) are tuned on the first week's
X -> Y, never on a Y'. ``--encoder-ablation``: single-modality variants on every encoder (``bench.encoder_ablation``).
Writes ``<out>/compare.{json,md}``, merges its records into ``cold_start.json``. Pure but `recorded_training` (Dagster).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rec_assets.datasets import WeekData
from rec_assets.evaluation.baselines import popularity_top_k, random_top_k
from rec_assets.evaluation.intervals import paired_difference, pooled_interval
from rec_assets.evaluation.metrics import evaluate_segments
from rec_assets.evaluation.report import lift_table
from rec_assets.peers.adapters import (
    EvaluationContext, PeerScores, TwoTowerConfig, adapter, config_dict, evaluate_scores, evaluation_context,
    fit_and_evaluate, not_applicable_frame, training_set, user_values,
)
from rec_assets.model.train import TrainConfig
from rec_assets.model.variants import ABLATIONS, VARIANTS
from rec_assets.peers.holdout import (
    PopularityColumns, evaluate_lightfm_holdout, holdout_split, lightfm_holdout_split,
)

__all__ = ["COLUMNS", "PEERS", "compare_week", "main", "peers_available"]

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
            ``peers.adapters.user_values`` columns plus system and protocol (the pooled tables read them).
        oracle: the simulator's ``evaluation.oracle.OracleFactors`` (with ``scoring_week``): the oracle rows of the
            cold segments, ranked by ``oracle.oracle_top_k`` on the same users and truth (a ceiling, never a model).

    ALS/BPR cannot score titles without a training interaction: their cold and holdout rows are NaN with the
    segment's evaluated users (see ``peers.adapters``). Seconds: fit (train) and embed + rank + metrics (score).
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
            from rec_assets.evaluation.oracle import oracle_top_k

            cold = {s: m for s, m in ctx.masks.items() if s[0] == "cold"}
            started = time.perf_counter()
            try:
                lists = oracle_top_k(oracle, ctx.users.user_ids, score.items.title_ids, cold, k,
                                     scoring_week=pd.Timestamp(scoring_week).date(), exclude=ctx.exclusion,
                                     chunk_users=chunk_users)
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


# --- reports -------------------------------------------------------------------------------------------------------

SYSTEM_ORDER = ("oracle_all", "oracle_metadata", "synopsis", "cover_art", "categorical", "ncf_extension",
                "concat_no_id", "attention_no_id", *ABLATIONS, "concat_id", "attention_id", "lightfm", "als", "bpr",
                "popularity", "random")
LABELS = {"als": "implicit ALS", "bpr": "implicit BPR", "lightfm": "LightFM (WARP, features)",
          "oracle_all": "oracle (all factors)", "oracle_metadata": "oracle (metadata)"}


def _seconds_table(results: pd.DataFrame) -> str:
    seconds = (results.drop_duplicates(["scoring_week", "system", "protocol"])
               .groupby(["protocol", "system"])[["train_seconds", "score_seconds"]].mean().reset_index())
    order = {s: i for i, s in enumerate(SYSTEM_ORDER)}
    seconds = seconds.sort_values(["protocol", "system"], key=lambda c: c.map(order).fillna(99) if c.name == "system"
                                  else c)
    lines = ["| protocol | system | train s | score s |", "| --- | --- | --- | --- |"]
    for r in seconds.itertuples(index=False):
        fmt = (lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}")
        lines.append(f"| {r.protocol} | {LABELS.get(r.system, r.system)} | {fmt(r.train_seconds)} | "
                     f"{fmt(r.score_seconds)} |")
    return "\n".join(lines)


def _spread_table(results: pd.DataFrame, protocol: str, k: int) -> str:
    """Mean ± std across weeks of P and R per system and segment (contributing weeks only)."""
    df = results[(results["protocol"] == protocol) & results["metric"].isin(["precision", "recall"])]
    df = df[(df["evaluated_users"] > 0) & df["value"].notna()]
    if df.empty:
        return "(no evaluated users)"
    stats = df.groupby(["system", "candidate_set", "category", "metric"])["value"].agg(["mean", "std", "count"])
    stats = stats.reset_index()
    lines = [f"| system | segment | P@{k} mean ± std | R@{k} mean ± std | weeks |", "| --- | --- | --- | --- | --- |"]
    order = {s: i for i, s in enumerate(SYSTEM_ORDER)}
    for (system, cset, cat), g in sorted(stats.groupby(["system", "candidate_set", "category"]),
                                         key=lambda kv: (kv[0][1], kv[0][2], order.get(kv[0][0], 99))):
        cell = {}
        for r in g.itertuples(index=False):
            std = "" if math.isnan(r.std) else f" ± {100 * r.std:.2f}"
            cell[r.metric] = f"{100 * r.mean:.2f}%{std}"
        lines.append(f"| {LABELS.get(system, system)} | {cset} {cat} | {cell.get('precision', 'n/a')} | "
                     f"{cell.get('recall', 'n/a')} | {int(g['count'].max())} |")
    return "\n".join(lines)


def results_markdown(results: pd.DataFrame, tuning: Mapping[str, dict], settings: dict, k: int = 6) -> str:
    """compare.md: per protocol and candidate set a lift table (``evaluation.report.lift_table``), the spread across
    weeks, the seconds, the tuning grids and chosen values."""
    long = results.rename(columns={"system": "variant"})
    parts = [f"# Two-tower vs peers ({settings.get('source', 'unknown source')})", "",
             f"Weeks: {', '.join(settings.get('weeks', []))}. K = {k}. Generated by `python -m rec_assets.bench.compare`"
             f" in {settings.get('seconds', float('nan')):.0f} s.", "",
             "Protocols: **standard** = the paper's (train X→Y, peers on X ∪ Y; score X'→Y'; warm and cold-start "
             "candidates, movies and TV apart); **holdout** = LightFM paper's item holdout (20% of titles never "
             "trained on, ranked among themselves). ALS, BPR and popularity cannot score titles without training "
             "interactions: their cold/holdout cells are n/a by construction.", ""]
    for protocol in WEEKLY_PROTOCOLS:
        sub = long[long["protocol"] == protocol]
        if sub.empty:
            continue
        for cset in [c for c in ("warm", "cold", "holdout") if c in set(sub["candidate_set"])]:
            seg = sub[sub["candidate_set"] == cset]
            baseline = "popularity" if cset == "warm" else "random"
            present = [s for s in SYSTEM_ORDER if s in set(seg["variant"])]
            present += sorted(set(seg["variant"]) - set(present))  # e.g. two_tower:<variant> retrained for holdout
            parts += [f"## {protocol} protocol, {cset} titles", "",
                      lift_table(seg, baseline=baseline, rows=present, candidate_set=cset, k=k, labels=LABELS), ""]
        parts += [f"### {protocol}: mean ± std across weeks", "", _spread_table(results, protocol, k), ""]
    parts += ["## Seconds (mean per week)", "", _seconds_table(results), ""]
    parts += ["## Tuning (validation: first week's X → Y, never Y')", ""]
    for peer, t in tuning.items():
        parts.append(f"- **{LABELS.get(peer, peer)}**: grid {json.dumps(t.get('grid'))}; chosen "
                     f"{json.dumps({k_: v for k_, v in t.get('chosen', {}).items() if k_ in t.get('grid', {})})} "
                     f"(objective {t.get('objective', float('nan')):.4f}, {len(t.get('trials', []))} configurations, "
                     f"{t.get('seconds', 0):.0f} s)")
    skipped = settings.get("skipped_peers") or []
    if skipped:
        parts += ["", f"Skipped (not installed: `pip install -e '.[peers]'`): {', '.join(skipped)}"]
    parts += ["", "Per-week details (holdout sizes, evaluated users): compare.json `weeks`.", ""]
    return "\n".join(parts)


# --- pooled per-user tables, paired comparisons, cold_start.json -------------------------------------------------

RECORD_PROTOCOLS = {("standard", "warm"): "weekly_warm", ("standard", "cold"): "weekly_cold",
                    ("holdout", "holdout"): "weekly_holdout"}
OPPONENTS: tuple[str, ...] = ("lightfm", "popularity", "random")
RECORD_KEYS: tuple[str, ...] = ("dataset", "protocol", "system", "encoders", "category", "metric", "value", "ci_low",
                                "ci_high", "n_users")


def record_system(system: str) -> str:
    """A system's name in the records: a retrained ``two_tower:<variant>`` is its variant."""
    return system.split(":", 1)[1] if system.startswith("two_tower:") else system


def per_user_long(weekly: pd.DataFrame | None, lightfm: pd.DataFrame | None, k: int) -> pd.DataFrame:
    """Every per-user value as one long frame: protocol (record name), system (record name), category,
    scoring_week, seed, user_id, metric, value. Weekly pairs carry seed -1, LightFM-protocol pairs its seed."""
    columns = ["protocol", "system", "category", "scoring_week", "seed", "user_id", "metric", "value"]
    parts = []
    if weekly is not None and len(weekly):
        frame = weekly.assign(protocol=[RECORD_PROTOCOLS.get((p, c), f"{p}_{c}")
                                        for p, c in zip(weekly["protocol"], weekly["candidate_set"])], seed=-1)
        metrics = [f"p@{k}", f"r@{k}"]
        parts.append(frame.melt(id_vars=["protocol", "system", "category", "scoring_week", "seed", "user_id"],
                                value_vars=metrics, var_name="metric"))
    if lightfm is not None and len(lightfm):
        metrics = [m for m in LIGHTFM_METRICS if m in lightfm.columns]
        parts.append(lightfm.assign(protocol="lightfm_holdout").melt(
            id_vars=["protocol", "system", "category", "scoring_week", "seed", "user_id"], value_vars=metrics,
            var_name="metric"))
    if not parts:
        return pd.DataFrame(columns=columns)
    long = pd.concat(parts, ignore_index=True)[columns]
    long["system"] = long["system"].map(record_system)
    return long.dropna(subset=["value"]).reset_index(drop=True)


def _aggregate_only(results: pd.DataFrame, k: int) -> pd.DataFrame:
    """Weekly aggregate rows (no per-user values) in record names: protocol, system, category, metric, value,
    evaluated_users, scoring_week."""
    df = results[results["metric"].isin(["precision", "recall"])].copy()
    df["protocol"] = [RECORD_PROTOCOLS.get((p, c), f"{p}_{c}") for p, c in zip(df["protocol"], df["candidate_set"])]
    df["metric"] = df["metric"].map({"precision": f"p@{k}", "recall": f"r@{k}"})
    df["system"] = df["system"].map(record_system)
    return df


def cold_start_records(long: pd.DataFrame, results: pd.DataFrame | None, lightfm_means: pd.DataFrame | None, *,
                       dataset: str, encoders: str, k: int, n_resamples: int = 2000, seed: int = 0) -> list[dict]:
    """The records of ``cold_start.json`` (:data:`RECORD_KEYS` plus n_pairs, and seeds/mean/std for the LightFM
    protocol): every (protocol, system, category, metric) pooled over its (user, week) or (user, seed) pairs with
    the 95% bootstrap interval over users. A system with aggregate rows only (e.g. rows another asset stored) gets
    its pooled value (the user-weighted mean of its weeks) and no interval; one that cannot rank (n/a) gets None."""
    records = []
    population = long.groupby(["protocol", "category"])["user_id"].nunique().to_dict() if len(long) else {}
    seen = set()
    for (protocol, system, category, metric), g in long.groupby(["protocol", "system", "category", "metric"],
                                                                 sort=True):
        interval = pooled_interval(g["value"].to_numpy(), g["user_id"].to_numpy(), n_resamples=n_resamples,
                                   seed=seed)
        record = {"dataset": dataset, "protocol": protocol, "system": system, "encoders": encoders,
                  "category": category, "metric": metric, "value": interval.value, "ci_low": interval.low,
                  "ci_high": interval.high, "n_users": interval.n_users, "n_pairs": interval.n_pairs}
        if protocol == "lightfm_holdout":
            per_seed = g.groupby("seed")["value"].mean()
            record.update(seeds=[int(x) for x in per_seed.index], mean=float(per_seed.mean()),
                          std=float(per_seed.std(ddof=1)) if len(per_seed) > 1 else math.nan)
        records.append(record)
        seen.add((protocol, system, category, metric))
    leftovers = []
    if results is not None and len(results):
        leftovers.append(_aggregate_only(results, k))
    if lightfm_means is not None and len(lightfm_means):
        leftovers.append(lightfm_means.assign(protocol="lightfm_holdout", system=lightfm_means["system"]
                                              .map(record_system), scoring_week=""))
    for frame in leftovers:
        for (protocol, system, category, metric), g in frame.groupby(["protocol", "system", "category", "metric"],
                                                                     sort=True):
            if (protocol, system, category, metric) in seen:
                continue
            seen.add((protocol, system, category, metric))
            known = g[g["value"].notna() & (g["evaluated_users"] > 0)]
            n_pairs = int(known["evaluated_users"].sum())
            value = float((known["value"] * known["evaluated_users"]).sum() / n_pairs) if n_pairs else None
            records.append({"dataset": dataset, "protocol": protocol, "system": system, "encoders": encoders,
                            "category": category, "metric": metric, "value": value, "ci_low": None, "ci_high": None,
                            "n_users": int(population.get((protocol, category), 0)),
                            "n_pairs": n_pairs if value is not None else int(g["evaluated_users"].sum())})
    return _nan_to_none(records)


def comparisons(long: pd.DataFrame, variants: Sequence[str], k: int, opponents: Sequence[str] = OPPONENTS,
                n_resamples: int = 2000, seed: int = 0) -> list[dict]:
    """Paired bootstrap of each two-tower variant against each opponent on warm and cold P/R@k, weekly-holdout P@k
    and the LightFM protocol's AUC and P@6, per category, on the (week or seed, user) pairs both evaluated; verdict
    "n/a" where the opponent cannot rank that protocol's candidates."""
    specs = [("weekly_warm", f"p@{k}"), ("weekly_warm", f"r@{k}"), ("weekly_cold", f"p@{k}"), ("weekly_cold", f"r@{k}"),
             ("weekly_holdout", f"p@{k}"), ("lightfm_holdout", "auc"), ("lightfm_holdout", "p@6")]
    keys = ["scoring_week", "seed", "user_id"]
    groups = {key: g for key, g in long.groupby(["protocol", "metric", "category", "system"])}
    out = []
    for variant in variants:
        for opponent in opponents:
            for protocol, metric in specs:
                for category in sorted({c for (p, m, c, _) in groups if (p, m) == (protocol, metric)}):
                    a = groups.get((protocol, metric, category, variant))
                    if a is None:
                        continue
                    b = groups.get((protocol, metric, category, opponent))
                    row = {"variant": variant, "opponent": opponent, "protocol": protocol, "category": category,
                           "metric": metric}
                    if b is None:
                        out.append({**row, "difference": None, "ci_low": None, "ci_high": None, "n_users": 0,
                                    "verdict": "n/a"})
                        continue
                    c = paired_difference(a, b, keys=keys, value="value", names=(variant, opponent),
                                          n_resamples=n_resamples, seed=seed)
                    out.append({**row, "difference": c.difference.value, "ci_low": c.difference.low,
                                "ci_high": c.difference.high, "n_users": c.difference.n_users, "verdict": c.verdict})
    return _nan_to_none(out)


def write_cold_start(path: Path, dataset: str, records: Sequence[dict]) -> list[dict]:
    """Merge ``records`` into the list at ``path``: every earlier record of ``dataset`` is replaced, the other
    datasets' records are kept (the simulator and the MovieLens runs write one file in two invocations)."""
    path = Path(path)
    kept = [r for r in (json.loads(path.read_text()) if path.is_file() else []) if r.get("dataset") != dataset]
    merged = kept + [dict(r) for r in records]
    merged.sort(key=lambda r: tuple(str(r.get(key)) for key in ("dataset", "protocol", "category", "metric",
                                                                "system")))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=1, default=_json_default) + "\n")
    return merged


def _cell(value, low=None, high=None, percent: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    scale, unit = (100.0, "%") if percent else (1.0, "")
    text = f"{scale * value:.2f}{unit}" if percent else f"{value:.3f}"
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        text += f" [{scale * low:.2f}, {scale * high:.2f}]" if percent else f" [{low:.3f}, {high:.3f}]"
    return text


def pooled_markdown(records: Sequence[dict], compared: Sequence[dict], own_encoders: str | None = None) -> str:
    """The pooled tables (value [95% CI] per system), the LightFM-protocol table and the comparisons; with
    ``own_encoders``, only the rows of the run's own features (the encoder ablation has its own table)."""
    if not records:
        return ""
    frame = pd.DataFrame(records)
    if own_encoders is not None and "encoders" in frame:
        frame = frame[frame["encoders"] == own_encoders]
    order = {s: i for i, s in enumerate(SYSTEM_ORDER)}
    parts = ["## Pooled over evaluated (user, week) pairs, 95% bootstrap interval over users", "",
             "Each cell: the metric over all evaluated pairs [2.5%, 97.5%] of 2,000 resamples of the users (a user "
             "evaluated in several weeks or seeds is one unit). No interval: aggregate rows only (no per-user "
             "values); n/a: the system cannot rank these candidates. lightfm_holdout: the LightFM paper's protocol "
             "(20% of all titles held out with every interaction, per seed; truth = held-out watches of X' and Y'; "
             "ranked among the held-out titles), pooled over its seeds' (user, seed) pairs.", ""]
    protocol_order = {p: i for i, p in enumerate(("weekly_warm", "weekly_cold", "weekly_holdout", "lightfm_holdout"))}
    category_order = {c: i for i, c in enumerate(("movie", "tv", "all"))}
    groups = sorted(frame.groupby(["protocol", "category"]), key=lambda kv: (
        protocol_order.get(kv[0][0], 99), kv[0][0], category_order.get(kv[0][1], 99)))
    for (protocol, category), g in groups:
        metrics = [m for m in ("p@6", "r@6", "r@20", "auc") if m in set(g["metric"])] + \
                  sorted(set(g["metric"]) - {"p@6", "r@6", "r@20", "auc"})
        lifted = protocol == "lightfm_holdout"
        header = ["system", *(m.upper() if m == "auc" else m.replace("p@", "P@").replace("r@", "R@") for m in metrics),
                  "users", "pairs"] + (["mean ± std across seeds (first metric)"] if lifted else [])
        lines = [f"### {protocol}, {category}", "", "| " + " | ".join(header) + " |",
                 "|" + " --- |" * len(header)]
        for system, rows in sorted(g.groupby("system"), key=lambda kv: (order.get(kv[0], 99), kv[0])):
            by_metric = {r["metric"]: r for r in rows.to_dict("records")}
            cells = [_cell(by_metric[m]["value"], by_metric[m]["ci_low"], by_metric[m]["ci_high"], m != "auc")
                     if m in by_metric else "" for m in metrics]
            first = by_metric[metrics[0]] if metrics and metrics[0] in by_metric else {}
            extra = []
            if lifted:
                mean, std = first.get("mean"), first.get("std")
                extra = [("n/a" if mean is None or (isinstance(mean, float) and math.isnan(mean)) else
                          f"{mean:.3f} ± {std:.3f}" if std is not None and not math.isnan(std) else f"{mean:.3f}")]
            lines.append(f"| {LABELS.get(system, system)} | " + " | ".join(cells) +
                         f" | {first.get('n_users', '')} | {first.get('n_pairs', '')} |" +
                         ("".join(f" {e} |" for e in extra)))
        parts += [*lines, ""]
    if compared:
        parts += ["## Comparisons (paired bootstrap on the same users)", "",
                  "Difference = variant - opponent, pooled over the pairs both evaluated, [95% interval]; "
                  "\"not separable\" when the interval contains 0.", "",
                  "| variant | vs | protocol | category | metric | difference | users | verdict |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for c in compared:
            percent = c["metric"] != "auc"
            parts.append(f"| {c['variant']} | {LABELS.get(c['opponent'], c['opponent'])} | {c['protocol']} | "
                         f"{c['category']} | {c['metric']} | {_cell(c['difference'], c['ci_low'], c['ci_high'], percent)}"
                         f" | {c['n_users']} | {c['verdict']} |")
        parts.append("")
    return "\n".join(parts)


def encoders_label(artifacts: Path, week: str) -> str:
    """``<cover art>+<synopsis>`` encoders of the week's feature artifacts (``features.encoders``), "unknown" when
    they cannot be read."""
    from rec_assets.features.encoders import week_encoders_label

    try:
        return week_encoders_label(artifacts, week)
    except Exception:  # noqa: BLE001 - a missing or unreadable artifact only leaves the label unknown
        return "unknown"


# --- main ----------------------------------------------------------------------------------------------------------

FEATURE_ASSETS = {"categorical": "title_categorical_features", "synopsis": "title_synopsis_embeddings",
                  "cover_art": "title_cover_art_embeddings"}


def materialised_weeks(artifacts: Path) -> list[str]:
    """Weeks with all three feature artifact references."""
    sets = [{p.name for p in (artifacts / "refs" / a).glob("*")} if (artifacts / "refs" / a).is_dir() else set()
            for a in FEATURE_ASSETS.values()]
    return sorted(set.intersection(*sets)) if sets else []


def _feature_refs(artifacts: Path, week: str) -> dict:
    """kind -> the ``ArtifactRef`` of the week's feature asset (as the asset handed it on)."""
    import pickle

    refs = {}
    for key, asset in FEATURE_ASSETS.items():
        with open(artifacts / "refs" / asset / week, "rb") as handle:
            refs[key] = pickle.load(handle)
    return refs


def _week_inputs(conn, artifacts: Path, week: str, lengths):
    from rec_assets.datasets import ANALYSES, load_week
    from rec_assets.split.windows import week_windows
    from rec_assets.sqlmodels.runner import query

    refs = _feature_refs(artifacts, week)
    start = datetime.fromisoformat(week).replace(tzinfo=timezone.utc)
    windows = week_windows(start, start + timedelta(days=7), lengths)
    catalogue = query(conn, ANALYSES["week_catalogue"], {"scoring_week": week}).df()
    train = load_week(conn, windows, catalogue, refs["categorical"], refs["synopsis"], refs["cover_art"], "train")
    score = load_week(conn, windows, catalogue, refs["categorical"], refs["synopsis"], refs["cover_art"], "score")
    vocabulary = refs["categorical"].open().frame("vocabulary")
    return train, score, vocabulary


def _ablate_week(ablation, train: WeekData, score: WeekData, vocabulary: pd.DataFrame, artifacts: Path, week: str,
                 *, cold: bool, lightfm: bool, weekly_checkpoints: set[str], lightfm_variants: set[str]) -> None:
    """``ablation`` (an ``encoder_ablation.EncoderAblation``) on one week; the run's own rows of a variant (its
    checkpoint's weekly rows, its LightFM-protocol retraining) stand for the week's own encoder."""
    from rec_assets.features.encoders import cover_art_encoder, synopsis_encoder
    from rec_assets.peers.holdout import popularity_columns

    if not (cold or lightfm):
        return
    refs = _feature_refs(artifacts, week)
    own = {"cover_art": cover_art_encoder(refs["cover_art"]), "synopsis": synopsis_encoder(refs["synopsis"])}
    computed = {(v, "weekly_cold") for v in weekly_checkpoints} | {(v, "lightfm_holdout") for v in lightfm_variants}
    ablation.run_week(train, score, week=week, label=f"{own['cover_art']}+{own['synopsis']}", own=own, cold=cold,
                      lightfm=lightfm, computed=computed, popularity=popularity_columns(vocabulary))


def _checkpoints(artifacts: Path, week: str, recorded_seconds: Mapping[str, tuple[str, float]] | None = None,
                 ) -> tuple[dict[str, str], dict[str, float], list[str]]:
    """Loadable checkpoints of the week, their training seconds, and the ones skipped (why).

    Training seconds come from ``recorded_seconds`` (variant -> (sha256, seconds), see :func:`recorded_training`)
    and count only when the sha256 is this file's: the time of the run that wrote exactly this checkpoint."""
    from rec_assets.model.checkpoint import load_checkpoint

    paths, seconds, skipped = {}, {}, []
    for path in sorted((artifacts / "checkpoints").glob(f"*/{week}.pt")):
        variant = path.parent.name
        try:
            loaded = load_checkpoint(path)
        except Exception as error:  # a stale format: say so, compare the rest
            skipped.append(f"{variant}: {error}")
            continue
        paths[variant] = str(path)
        sha256, wall = (recorded_seconds or {}).get(variant, ("", math.nan))
        if sha256 == loaded.sha256:
            seconds[variant] = wall
    return paths, seconds, skipped


def mean_attention(paths: Mapping[str, str], score: WeekData) -> dict[str, dict[str, dict[str, float]]]:
    """variant -> category -> metadata type -> mean attention weight over the week's titles (Figure 4's means),
    for the attention variants among the checkpoints ``paths``."""
    from rec_assets.model.checkpoint import attention_weights, load_checkpoint

    out = {}
    for variant, path in paths.items():
        if VARIANTS[variant].fusion != "attention" or len(VARIANTS[variant].item_types) < 2:
            continue
        weights, types = attention_weights(load_checkpoint(path).model, score.items)
        out[variant] = {category: dict(zip(types, map(float, weights[mask].mean(0))))
                        for category, mask in (("movie", ~score.items.is_tv), ("tv", score.items.is_tv)) if mask.any()}
    return out


def recorded_training(dagster_home: Path, week: str, variants: Sequence[str]) -> dict[str, tuple[str, float]]:
    """variant -> (sha256, wall_seconds) of the latest materialisation of ``tower_checkpoint_<variant>`` for
    ``week`` in the Dagster instance at ``dagster_home`` (the tower assets record both); empty without one.

    The checkpoint files hold no timings on purpose (re-training must give the same bytes), so the run history
    is where training time lives. Imports dagster only here: the rest of this module is pure."""
    if not (dagster_home / "dagster.yaml").is_file():
        return {}
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home.resolve())
    try:
        instance = DagsterInstance.get()
        found = {}
        for variant in variants:
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey(f"tower_checkpoint_{variant}"), asset_partitions=[week]),
                limit=1,
            ).records
            if not records or records[0].asset_materialization is None:
                continue
            metadata = records[0].asset_materialization.metadata
            if "sha256" in metadata and "wall_seconds" in metadata:
                found[variant] = (str(metadata["sha256"].value), float(metadata["wall_seconds"].value))
        return found
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return str(value)


def _nan_to_none(records: list[dict]) -> list[dict]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in records]


DATASETS = {"simulator": "simulator", "movielens": "movielens-100k", "movielens-100k": "movielens-100k"}


def _stored_rows(conn, week: str, computed: set[str]) -> pd.DataFrame:
    """Rows of the warehouse's ``evaluation_metrics`` for ``week`` of systems this run does not compute (e.g. the
    simulator's oracle rows), as standard-protocol rows without seconds: other assets' systems flow through."""
    try:
        stored = conn.execute("SELECT variant, candidate_set, category, metric, value, evaluated_users"
                              " FROM evaluation_metrics WHERE scoring_week = $w", {"w": week}).df()
    except Exception:  # no table yet: nothing stored
        return pd.DataFrame(columns=list(COLUMNS))
    stored = stored[~stored["variant"].isin(computed)]
    if stored.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    return stored.rename(columns={"variant": "system"}).assign(protocol="standard", train_seconds=math.nan,
                                                               score_seconds=math.nan)[list(COLUMNS)]


ORACLES = ("oracle_metadata", "oracle_all")


def _oracle_factors(option: str, home: Path):
    """The simulator's hidden factors for the oracle rows: ``option``'s directory, else the only source directory
    under ``home/sources`` holding them; None for ``none``, for other sources, or when ambiguous."""
    if option.strip().lower() == "none":
        return None
    from rec_assets.evaluation.oracle import load_oracle_factors
    from rec_assets.sources.simulator import ORACLE_FILE

    found = [Path(option)] if option else [p.parent for p in (home / "sources").glob(f"*/{ORACLE_FILE}")]
    return load_oracle_factors(found[0]) if len(found) == 1 else None


def _names(text: str | None, default: Sequence[str]) -> list[str]:
    if text is None:
        return list(default)
    return [] if text.strip().lower() == "none" else [v for v in text.split(",") if v]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rec-home", default=os.environ.get("REC_HOME") or str(Path.cwd() / ".rec_home"))
    parser.add_argument("--weeks", default="", help="comma-separated scoring weeks (default: every materialised one)")
    parser.add_argument("--max-weeks", type=int, default=0, help="keep only the last N weeks (0: all)")
    parser.add_argument("--tune-week", default="", help="week whose training phase tunes the peers (default: first)")
    parser.add_argument("--grid", default="full", choices=["full", "small", "none"],
                        help="tuning grid (peers.tuning.GRIDS); none: the adapters' defaults")
    parser.add_argument("--peers", default=",".join(PEERS), help="adapters, e.g. als,bpr,lightfm,two_tower:synopsis (none: no peer)")
    parser.add_argument("--variants", default=None,
                        help="two-tower variants of the run: their checkpoints (default: all eight; none: no variant)")
    parser.add_argument("--holdout-two-tower", default=None,
                        help="variants retrained for the holdout protocols, weekly and LightFM's (default: --variants;"
                             " none: no retraining)")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help=f"any of {','.join(PROTOCOLS)}")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 of the LightFM paper's protocol")
    parser.add_argument("--lightfm-week", default="", help="the LightFM protocol's week (default: the last week)")
    parser.add_argument("--no-checkpoints", action="store_true", help="leave the two-tower checkpoints out")
    parser.add_argument("--oracle-dir", default="",
                        help="simulator source directory with oracle_factors.npz for the oracle rows (default: the one "
                             "under <rec-home>/sources if exactly one; none: no oracle rows but the stored ones)")
    parser.add_argument("--k", type=int, default=int(os.environ.get("REC_TOP_K", 6)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout-share", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (ALS threads follow the config)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the intervals")
    parser.add_argument("--out", default="results")
    parser.add_argument("--cold-start", default="", help="cold_start.json to merge into (default: <out>/cold_start.json)")
    parser.add_argument("--source", default=os.environ.get("REC_DATA_SOURCE", "simulator"),
                        help="label of the data in the report")
    parser.add_argument("--dataset", default="", choices=["", "simulator", "movielens-100k"],
                        help="dataset of the cold_start.json records (default: from --source)")
    parser.add_argument("--encoder-ablation", action="store_true",
                        help="also train the synopsis and cover_art variants on each encoder's vectors of the week "
                             "(bench.encoder_ablation): weekly cold of the last week and the LightFM protocol")
    parser.add_argument("--ablation-encoders", default="all",
                        help="encoders of --encoder-ablation, e.g. word2vec,glove50,minilm,efficientnet_lite0,"
                             "efficientnet_lite0-random (default: all)")
    parser.add_argument("--type-ablation", action="store_true",
                        help="also retrain attention w/o ID with each metadata type removed (model.variants.ABLATIONS) "
                             "on every week's training phase: weekly warm and cold, compared with attention_no_id")
    parser.add_argument("--ablation-seeds", type=int, default=0,
                        help="seeds 0..N-1 of the ablation's LightFM protocol (default 0: those of --seeds)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)

    import duckdb

    from rec_assets.split.windows import WindowLengths
    from rec_assets.peers.holdout import popularity_columns
    from rec_assets.peers.tuning import DEFAULT_CONFIGS, tune

    home = Path(args.rec_home).resolve()
    artifacts = Path(os.environ.get("REC_ARTIFACTS") or home / "artifacts")
    database = Path(os.environ.get("REC_DUCKDB") or home / "warehouse.duckdb")
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or home / "dagster_home")
    weeks = [w for w in args.weeks.split(",") if w] or materialised_weeks(artifacts)
    if args.max_weeks:
        weeks = weeks[-args.max_weeks:]
    if not weeks:
        print(f"no materialised week under {artifacts} (run `make run` first)", file=sys.stderr)
        return 2
    lengths = WindowLengths(history_days=int(os.environ.get("REC_HISTORY_DAYS", 730)),
                            label_days=int(os.environ.get("REC_LABEL_DAYS", 14)),
                            recent_popularity_days=int(os.environ.get("REC_RECENT_POPULARITY_DAYS", 60)))
    peers, skipped_peers = peers_available(_names(args.peers, PEERS))
    if skipped_peers:
        print(f"peers not installed, skipped: {skipped_peers} (pip install -e '.[peers]')", file=sys.stderr)
    protocols = [p for p in args.protocols.split(",") if p]
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        parser.error(f"unknown protocols {sorted(unknown)}; known: {', '.join(PROTOCOLS)}")
    variants = _names(args.variants, VARIANTS)
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    holdout_variants = _names(args.holdout_two_tower, variants)
    holdout_peers = [f"two_tower:{v}" for v in holdout_variants]
    weekly_protocols = [p for p in protocols if p in WEEKLY_PROTOCOLS]
    lightfm_week = args.lightfm_week or weeks[-1]
    seeds = list(range(args.seeds))
    dataset = args.dataset or DATASETS.get(args.source, args.source)
    oracle = _oracle_factors(args.oracle_dir, home)
    ablation = None
    if args.encoder_ablation:
        from rec_assets.bench.encoder_ablation import EncoderAblation, parse_encoders

        try:
            ablated = parse_encoders(args.ablation_encoders)
        except ValueError as error:
            parser.error(str(error))
        ablation = EncoderAblation(ablated, cover_art_cache=artifacts / "cache" / "cover_art",
                                   training=PLATFORM_TRAINING, threads=args.threads,
                                   seeds=list(range(args.ablation_seeds)) if args.ablation_seeds else seeds,
                                   share=args.holdout_share, k=args.k)

    ablation_peers = [f"two_tower:{v}" for v in ABLATIONS] if args.type_ablation else []
    # A private copy of the warehouse: the platform may be writing to it, and a read-only connection needs no lock.
    with tempfile.TemporaryDirectory(prefix="rec_compare_") as tmp:
        copy = Path(tmp) / "warehouse.duckdb"
        shutil.copyfile(database, copy)
        conn = duckdb.connect(str(copy), read_only=True)
        try:
            tune_week = args.tune_week or weeks[0]
            tuning: dict[str, dict] = {}
            configs: dict[str, Any] = {f"two_tower:{v}": TwoTowerConfig(v, PLATFORM_TRAINING, args.threads)
                                       for v in [*holdout_variants, *(p.split(":", 1)[1] for p in ablation_peers)]}
            if args.grid != "none":
                tune_train, _, _ = _week_inputs(conn, artifacts, tune_week, lengths)
                for peer in peers:
                    if peer not in DEFAULT_CONFIGS:
                        continue
                    result = tune(peer, tune_train, args.grid, k=args.k)
                    configs[peer] = result.chosen
                    tuning[peer] = {**result.to_dict(), "tune_week": tune_week}
                    print(f"tuned {peer} on {tune_week} X->Y in {result.seconds:.1f} s: "
                          f"{config_dict(result.chosen)}", flush=True)
            frames, week_info, weekly_users, encoders = [], {}, [], set()
            lightfm_means = lightfm_users = last_attention = None
            lightfm_info: dict = {}
            for week in weeks:
                t0 = time.perf_counter()
                train, score, vocabulary = _week_inputs(conn, artifacts, week, lengths)
                encoders.add(encoders_label(artifacts, week))
                recorded = {} if args.no_checkpoints else recorded_training(dagster_home, week, variants)
                paths, seconds, skipped = ({}, {}, []) if args.no_checkpoints else _checkpoints(artifacts, week,
                                                                                                recorded)
                paths = {v: path for v, path in paths.items() if v in variants}
                info: dict = {"checkpoints": sorted(paths), "checkpoints_skipped": skipped}
                users: list[pd.DataFrame] = []
                frame = compare_week(train, score, peers=peers, holdout_peers=holdout_peers,
                                     standard_peers=ablation_peers, configs=configs,
                                     protocols=weekly_protocols,
                                     checkpoints=paths, checkpoint_train_seconds=seconds,
                                     popularity=popularity_columns(vocabulary), holdout_share=args.holdout_share,
                                     holdout_seed=args.seed, k=args.k, seed=args.seed, info=info, per_user=users,
                                     oracle=oracle, scoring_week=week)
                if "standard" in weekly_protocols:
                    computed = set(VARIANTS) | set(peers) | set(ablation_peers) | {"random", "popularity"} | \
                        set(ORACLES if oracle else ())
                    frame = pd.concat([frame, _stored_rows(conn, week, computed)], ignore_index=True)
                frames.append(frame.assign(scoring_week=week))
                weekly_users += [u.assign(scoring_week=week) for u in users]
                if "lightfm_holdout" in protocols and week == lightfm_week:
                    t1 = time.perf_counter()
                    systems = [p for p in peers if adapter(p).scores_cold] + \
                        [p for p in holdout_peers if p not in peers]
                    lightfm_means, lightfm_users = compare_lightfm_holdout(
                        train, score, systems=systems, configs=configs, popularity=popularity_columns(vocabulary),
                        seeds=seeds, share=args.holdout_share, info=lightfm_info)
                    lightfm_means = lightfm_means.assign(scoring_week=week)
                    lightfm_users = lightfm_users.assign(scoring_week=week)
                    info["lightfm_holdout_seconds"] = round(time.perf_counter() - t1, 2)
                if ablation is not None:
                    t1 = time.perf_counter()
                    _ablate_week(ablation, train, score, vocabulary, artifacts, week,
                                 cold="standard" in weekly_protocols and week == weeks[-1],
                                 lightfm="lightfm_holdout" in protocols and week == lightfm_week,
                                 weekly_checkpoints=set(paths) if "standard" in weekly_protocols else set(),
                                 lightfm_variants=set(holdout_variants) if "lightfm_holdout" in protocols else set())
                    info["encoder_ablation_seconds"] = round(time.perf_counter() - t1, 2)
                if week == weeks[-1]:
                    last_attention = mean_attention(paths, score)
                week_info[week] = {**info, "seconds": round(time.perf_counter() - t0, 2)}
                print(f"week {week}: {len(frame)} rows in {time.perf_counter() - t0:.1f} s"
                      + (f"; skipped checkpoints: {len(skipped)}" if skipped else ""), flush=True)
        finally:
            conn.close()

    results = pd.concat(frames, ignore_index=True)
    results = results[["scoring_week", *COLUMNS]]
    long = per_user_long(pd.concat(weekly_users, ignore_index=True) if weekly_users else None, lightfm_users, args.k)
    encoder_label = "|".join(sorted(encoders)) or "unknown"
    records = cold_start_records(long, results, lightfm_means, dataset=dataset, encoders=encoder_label, k=args.k,
                                 n_resamples=args.resamples, seed=args.seed)
    compared = comparisons(long, [v for v in VARIANTS if v in variants or v in holdout_variants], args.k,
                           n_resamples=args.resamples, seed=args.seed)
    from rec_assets.bench.paper_findings import findings_markdown, paper_findings

    findings = paper_findings(long, args.k, attention_means=last_attention, n_resamples=args.resamples,
                              seed=args.seed)
    if ablation_peers:
        compared += comparisons(long, list(ABLATIONS), args.k, opponents=("attention_no_id",),
                                n_resamples=args.resamples, seed=args.seed)
    ablation_part: dict = {}
    if ablation is not None:
        from rec_assets.bench.encoder_ablation import ablation_markdown

        ablated_records, table, ablation_compared = ablation.records(
            long, dataset=dataset, last_week=weeks[-1], n_resamples=args.resamples, seed=args.seed)
        records = records + ablated_records
        ablation_part = {"encoders": ablation.encoders, "runs": ablation.info, "table": table,
                         "comparisons": ablation_compared,
                         "markdown": ablation_markdown(table, ablation_compared, ablation.info, args.k)}
    settings = {"source": args.source, "dataset": dataset, "encoders": encoder_label, "rec_home": str(home),
                "weeks": weeks, "k": args.k, "seed": args.seed,
                "grid": args.grid, "tune_week": weeks[0] if not args.tune_week else args.tune_week,
                "protocols": protocols, "peers": peers, "variants": variants, "holdout_peers": holdout_peers,
                "skipped_peers": skipped_peers, "holdout_share": args.holdout_share,
                "lightfm_week": lightfm_week if "lightfm_holdout" in protocols else None, "seeds": seeds,
                "resamples": args.resamples, "oracles": oracle is not None,
                "encoder_ablation": ablation.encoders if ablation is not None else None,
                "window_lengths": asdict(lengths), "threads": args.threads,
                "configs": {p: config_dict(c) for p, c in configs.items()},
                "seconds": round(time.perf_counter() - started, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(
        {"settings": settings, "tuning": tuning, "weeks": week_info,
         "results": _nan_to_none(results.to_dict(orient="records")),
         "lightfm_holdout": {"splits": lightfm_info,
                             "per_seed": _nan_to_none(lightfm_means.to_dict(orient="records"))
                             if lightfm_means is not None else []},
         "pooled": records, "comparisons": compared, "paper_findings": findings, "attention_means": last_attention,
         "encoder_ablation": {k_: v for k_, v in ablation_part.items() if k_ != "markdown"} or None},
        indent=1, default=_json_default) + "\n")
    (out / "compare.md").write_text(results_markdown(results, tuning, settings, args.k) + "\n"
                                    + pooled_markdown(records, compared, encoder_label)
                                    + "\n" + findings_markdown(findings, dataset)
                                    + ("\n" + ablation_part["markdown"] if ablation_part.get("markdown") else ""))
    cold_start = Path(args.cold_start) if args.cold_start else out / "cold_start.json"
    write_cold_start(cold_start, dataset, records)
    print(f"wrote {out / 'compare.md'}, {out / 'compare.json'} and {cold_start} ({len(records)} {dataset} records)"
          f" in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
