"""Side-by-side comparison of the two-tower variants with peers (implicit ALS / BPR, LightFM) and the baselines.

    .venv/bin/python -m rec_assets.bench.compare            # every materialised week of REC_HOME -> results/
    .venv/bin/python -m rec_assets.bench.compare --weeks 2026-11-02 --grid small --out /tmp/compare

For each scoring week of ``REC_HOME`` whose feature artifacts exist, the week's training phase (X, Y) and scoring
phase (X', Y') are loaded with ``datasets.load_week`` and every system is evaluated by ``compare_week`` under two
protocols, with the metrics of ``evaluation.metrics`` (P, R, Cov, ConCov @K):

* ``standard``: the paper's protocol, as the ``evaluation_metrics`` asset runs it: train on X -> Y (peers: on X ∪ Y),
  score X' -> Y', warm and cold-start candidates, movies and TV apart. Two-tower variants come from their
  checkpoints (``artifacts/checkpoints/<variant>/<week>.pt``) through ``evaluation.week.evaluate_week``.
* ``holdout``: the LightFM paper's item-holdout protocol (``peers.holdout``): 20% of the week's titles held out of
  training entirely, ranked among themselves for each user with a Y' watch of one.

Peers are tuned once, on the validation split of the *first* evaluated week's training phase (X -> Y; see
``peers.tuning``), never on any Y'. The grids and chosen values are written with the results.

Writes ``<out>/compare.json`` (every row, the tuning trials, the run's settings) and ``<out>/compare.md``.
The peers are an optional extra: ``pip install -e '.[peers]'`` (see the README); without it this module still
runs the baselines and the two-tower checkpoints and says which peers it skipped.

Pure code apart from `recorded_training`, which reads training times from the Dagster run history.
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
from rec_assets.evaluation.metrics import evaluate_segments
from rec_assets.evaluation.report import lift_table
from rec_assets.peers.adapters import (
    EvaluationContext, TwoTowerConfig, adapter, config_dict, evaluation_context, fit_and_evaluate, not_applicable_frame,
    training_set,
)
from rec_assets.model.train import TrainConfig
from rec_assets.model.variants import VARIANTS
from rec_assets.peers.holdout import PopularityColumns, holdout_split

__all__ = ["COLUMNS", "PEERS", "compare_week", "main", "peers_available"]

COLUMNS: tuple[str, ...] = (
    "system", "protocol", "candidate_set", "category", "metric", "value", "evaluated_users", "train_seconds",
    "score_seconds",
)
PEERS: tuple[str, ...] = ("als", "bpr", "lightfm")
PROTOCOLS: tuple[str, ...] = ("standard", "holdout")
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


def _baselines(ctx: EvaluationContext, history_counts: np.ndarray | None, protocol: str, k: int, seed: int,
               chunk_users: int) -> list[pd.DataFrame]:
    """Random and popularity through ``evaluation.baselines`` as ``evaluate_week`` calls them (same lists)."""
    frames = []
    started = time.perf_counter()
    lists = {s: random_top_k(len(ctx.rows), k, m, ctx.exclusion, seed=seed) for s, m in ctx.masks.items()}
    frames.append(_rows(evaluate_segments(lists, ctx.truth, ctx.masks, k), "random", protocol, 0.0,
                        time.perf_counter() - started))
    if history_counts is None:  # no training view of the candidates: popularity cannot rank them
        frames.append(_rows(not_applicable_frame(ctx, list(ctx.masks), k), "popularity", protocol, math.nan,
                            math.nan))
    else:
        started = time.perf_counter()
        lists = {s: popularity_top_k(history_counts, len(ctx.rows), k, m, ctx.exclusion) for s, m in ctx.masks.items()}
        frames.append(_rows(evaluate_segments(lists, ctx.truth, ctx.masks, k), "popularity", protocol, 0.0,
                            time.perf_counter() - started))
    return frames


def compare_week(
    train: WeekData,
    score: WeekData,
    *,
    peers: Sequence[str] = PEERS,
    holdout_peers: Sequence[str] = (),
    configs: Mapping[str, Any] | None = None,
    protocols: Sequence[str] = PROTOCOLS,
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
) -> pd.DataFrame:
    """Metrics of every system on one week: columns :data:`COLUMNS`, one row per system, protocol, segment, metric.

    Args:
        train, score: the week's ``load_week(..., "train")`` and ``load_week(..., "score")``.
        peers: adapter names (``als``, ``bpr``, ``lightfm``, ``two_tower:<variant>`` to retrain a variant).
        holdout_peers: adapters evaluated under the holdout protocol only, after ``peers``: the two-tower variants
            retrained without the held-out titles (their standard-protocol rows come from the checkpoints).
        configs: peer name -> config (e.g. the tuned ones); default: each adapter's defaults.
        protocols: ``standard`` and/or ``holdout``.
        checkpoints: two-tower variant -> checkpoint path, evaluated by ``evaluate_week`` (standard protocol only:
            a checkpoint was trained on every title, so it cannot take part in the holdout protocol; retrain it with
            the ``two_tower:<variant>`` peer for that).
        checkpoint_train_seconds: variant -> training seconds to report (NaN when unknown).
        popularity: categorical columns reset for held-out titles (``holdout.popularity_columns``).
        info: filled with what the run saw (holdout split sizes, evaluated users), when given.

    ALS/BPR cannot score titles without a training interaction: their cold and holdout rows are NaN with the
    segment's evaluated users (see ``peers.adapters``). Seconds: fit (train) and embed + rank + metrics (score).
    """
    if not np.array_equal(train.users.user_ids, score.users.user_ids):
        raise ValueError("train and score phases must share the user rows (both read raw_users)")
    configs = dict(configs or {})
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocols {sorted(unknown)}")
    frames: list[pd.DataFrame] = []
    info = info if info is not None else {}

    if "standard" in protocols:
        ctx = evaluation_context(score)
        info["standard"] = {"evaluated_users": int(len(ctx.rows)),
                            "cold_titles": int(score.catalogue["is_cold_start"].sum()),
                            "warm_titles": int(score.catalogue["is_warm"].sum())}
        if checkpoints:
            from rec_assets.evaluation.week import evaluate_week

            result = evaluate_week(score, dict(checkpoints), k=k, seed=seed, chunk_users=chunk_users)
            metrics = result.metrics[~result.metrics["variant"].isin(["random", "popularity"])]
            for variant, frame in metrics.groupby("variant", sort=False):
                train_s = (checkpoint_train_seconds or {}).get(variant, math.nan)
                frames.append(_rows(frame.drop(columns="variant"), variant, "standard", train_s,
                                    result.seconds.get(variant, math.nan)))
        if baselines:
            frames += _baselines(ctx, score.history_counts, "standard", k, seed, chunk_users)
        training = training_set(train)
        for peer in peers:
            frame, train_s, score_s = fit_and_evaluate(peer, configs.get(peer), training, score, ctx, k,
                                                       chunk_users=chunk_users)
            frames.append(_rows(frame, peer, "standard", train_s, score_s))

    if "holdout" in protocols:
        split = holdout_split(train, score, popularity, share=holdout_share, seed=holdout_seed)
        info["holdout"] = split.summary()
        ctx = split.context
        if baselines:
            frames += _baselines(ctx, None, "holdout", k, seed, chunk_users)
        for peer in [*peers, *(p for p in holdout_peers if p not in peers)]:
            if not adapter(peer).scores_cold:
                frames.append(_rows(not_applicable_frame(ctx, list(ctx.masks), k), peer, "holdout", math.nan,
                                    math.nan))
                continue
            frame, train_s, score_s = fit_and_evaluate(peer, configs.get(peer), split.training, score, ctx, k,
                                                       chunk_users=chunk_users, embed_users=split.score_users,
                                                       embed_items=split.score_items)
            frames.append(_rows(frame, peer, "holdout", train_s, score_s))

    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(COLUMNS)]


# --- reports -------------------------------------------------------------------------------------------------------

SYSTEM_ORDER = ("synopsis", "cover_art", "categorical", "ncf_extension", "concat_no_id", "attention_no_id",
                "concat_id", "attention_id", "lightfm", "als", "bpr", "popularity", "random")
LABELS = {"als": "implicit ALS", "bpr": "implicit BPR", "lightfm": "LightFM (WARP, features)"}


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
    for protocol in PROTOCOLS:
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


# --- main ----------------------------------------------------------------------------------------------------------

FEATURE_ASSETS = {"categorical": "title_categorical_features", "synopsis": "title_synopsis_embeddings",
                  "cover_art": "title_cover_art_embeddings"}


def materialised_weeks(artifacts: Path) -> list[str]:
    """Weeks with all three feature artifact references."""
    sets = [{p.name for p in (artifacts / "refs" / a).glob("*")} if (artifacts / "refs" / a).is_dir() else set()
            for a in FEATURE_ASSETS.values()]
    return sorted(set.intersection(*sets)) if sets else []


def _week_inputs(conn, artifacts: Path, week: str, lengths):
    import pickle

    from rec_assets.datasets import ANALYSES, load_week
    from rec_assets.split.windows import week_windows
    from rec_assets.sqlmodels.runner import query

    refs = {}
    for key, asset in FEATURE_ASSETS.items():
        with open(artifacts / "refs" / asset / week, "rb") as handle:
            refs[key] = pickle.load(handle)
    start = datetime.fromisoformat(week).replace(tzinfo=timezone.utc)
    windows = week_windows(start, start + timedelta(days=7), lengths)
    catalogue = query(conn, ANALYSES["week_catalogue"], {"scoring_week": week}).df()
    train = load_week(conn, windows, catalogue, refs["categorical"], refs["synopsis"], refs["cover_art"], "train")
    score = load_week(conn, windows, catalogue, refs["categorical"], refs["synopsis"], refs["cover_art"], "score")
    vocabulary = refs["categorical"].open().frame("vocabulary")
    return train, score, vocabulary


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rec-home", default=os.environ.get("REC_HOME") or str(Path.cwd() / ".rec_home"))
    parser.add_argument("--weeks", default="", help="comma-separated scoring weeks (default: every materialised one)")
    parser.add_argument("--max-weeks", type=int, default=0, help="keep only the last N weeks (0: all)")
    parser.add_argument("--tune-week", default="", help="week whose training phase tunes the peers (default: first)")
    parser.add_argument("--grid", default="full", choices=["full", "small", "none"],
                        help="tuning grid (peers.tuning.GRIDS); none: the adapters' defaults")
    parser.add_argument("--peers", default=",".join(PEERS), help="adapters, e.g. als,bpr,lightfm,two_tower:synopsis")
    parser.add_argument("--holdout-two-tower", default="attention_no_id",
                        help="two-tower variants retrained per week for the holdout protocol (empty: none)")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--no-checkpoints", action="store_true", help="leave the two-tower checkpoints out")
    parser.add_argument("--k", type=int, default=int(os.environ.get("REC_TOP_K", 6)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout-share", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (ALS threads follow the config)")
    parser.add_argument("--out", default="results")
    parser.add_argument("--source", default=os.environ.get("REC_DATA_SOURCE", "simulator"),
                        help="label of the data in the report")
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
    peers, skipped_peers = peers_available([p for p in args.peers.split(",") if p])
    if skipped_peers:
        print(f"peers not installed, skipped: {skipped_peers} (pip install -e '.[peers]')", file=sys.stderr)
    protocols = [p for p in args.protocols.split(",") if p]
    holdout_variants = [v for v in args.holdout_two_tower.split(",") if v]
    holdout_peers = [f"two_tower:{v}" for v in holdout_variants]

    # A private copy of the warehouse: the platform may be writing to it, and a read-only connection needs no lock.
    with tempfile.TemporaryDirectory(prefix="rec_compare_") as tmp:
        copy = Path(tmp) / "warehouse.duckdb"
        shutil.copyfile(database, copy)
        conn = duckdb.connect(str(copy), read_only=True)
        try:
            tune_week = args.tune_week or weeks[0]
            tuning: dict[str, dict] = {}
            configs: dict[str, Any] = {f"two_tower:{v}": TwoTowerConfig(v, PLATFORM_TRAINING, args.threads)
                                       for v in holdout_variants}
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
            frames, week_info = [], {}
            for week in weeks:
                t0 = time.perf_counter()
                train, score, vocabulary = _week_inputs(conn, artifacts, week, lengths)
                recorded = {} if args.no_checkpoints else recorded_training(dagster_home, week, VARIANTS)
                paths, seconds, skipped = ({}, {}, []) if args.no_checkpoints else _checkpoints(artifacts, week,
                                                                                                recorded)
                info: dict = {"checkpoints": sorted(paths), "checkpoints_skipped": skipped}
                frame = compare_week(train, score, peers=peers, holdout_peers=holdout_peers, configs=configs,
                                     protocols=protocols,
                                     checkpoints=paths, checkpoint_train_seconds=seconds,
                                     popularity=popularity_columns(vocabulary), holdout_share=args.holdout_share,
                                     k=args.k, seed=args.seed, info=info)
                frames.append(frame.assign(scoring_week=week))
                week_info[week] = {**info, "seconds": round(time.perf_counter() - t0, 2)}
                print(f"week {week}: {len(frame)} rows in {time.perf_counter() - t0:.1f} s"
                      + (f"; skipped checkpoints: {len(skipped)}" if skipped else ""), flush=True)
        finally:
            conn.close()

    results = pd.concat(frames, ignore_index=True)
    results = results[["scoring_week", *COLUMNS]]
    settings = {"source": args.source, "rec_home": str(home), "weeks": weeks, "k": args.k, "seed": args.seed,
                "grid": args.grid, "tune_week": weeks[0] if not args.tune_week else args.tune_week,
                "protocols": protocols, "peers": peers, "holdout_peers": holdout_peers, "skipped_peers": skipped_peers,
                "holdout_share": args.holdout_share, "window_lengths": asdict(lengths), "threads": args.threads,
                "configs": {p: config_dict(c) for p, c in configs.items()},
                "seconds": round(time.perf_counter() - started, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(
        {"settings": settings, "tuning": tuning, "weeks": week_info,
         "results": _nan_to_none(results.to_dict(orient="records"))}, indent=1, default=_json_default) + "\n")
    (out / "compare.md").write_text(results_markdown(results, tuning, settings, args.k))
    print(f"wrote {out / 'compare.md'} and {out / 'compare.json'} in {settings['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
