"""Two-tower variants vs peers (implicit ALS / BPR, LightFM) and baselines; ``--help`` lists the scoping options.

    .venv/bin/python -m rec_assets.bench.compare --weeks 2026-11-02 --grid small --seeds 2 --out /tmp/compare

Tunes the peers on the first week, runs the protocols (``compare.protocols``) on every week of a private copy of
the warehouse, and writes ``<out>/compare.{json,md}`` (``compare.report``); its pooled records
(``compare.records``) are merged into ``cold_start.json``. ``--encoder-ablation``: ``bench.encoder_ablation``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from rec_assets.bench.compare.inputs import (
    ORACLES, encoders_label, feature_refs, find_oracle_factors, materialised_weeks, mean_attention,
    recorded_training, stored_rows, week_checkpoints, week_inputs,
)
from rec_assets.bench.compare.protocols import (
    COLUMNS, PEERS, PLATFORM_TRAINING, PROTOCOLS, WEEKLY_PROTOCOLS, compare_lightfm_holdout, compare_week,
    peers_available,
)
from rec_assets.bench.compare.records import (
    cold_start_records, comparisons, json_default, nan_to_none, per_user_long, write_cold_start,
)
from rec_assets.bench.compare.report import pooled_markdown, results_markdown
from rec_assets.model.inputs import WeekData
from rec_assets.model.variants import ABLATIONS, VARIANTS
from rec_assets.peers.adapters import TwoTowerConfig, adapter, config_dict

__all__ = ["main"]

def _ablate_week(ablation, train: WeekData, score: WeekData, vocabulary: pd.DataFrame, artifacts: Path, week: str,
                 *, cold: bool, lightfm: bool, weekly_checkpoints: set[str], lightfm_variants: set[str]) -> None:
    """``ablation`` (an ``encoder_ablation.EncoderAblation``) on one week; the run's own rows of a variant (its
    checkpoint's weekly rows, its LightFM-protocol retraining) stand for the week's own encoder."""
    from rec_assets.features.encoders import cover_art_encoder, synopsis_encoder
    from rec_assets.peers.holdout import popularity_columns

    if not (cold or lightfm):
        return
    refs = feature_refs(artifacts, week)
    own = {"cover_art": cover_art_encoder(refs["cover_art"]), "synopsis": synopsis_encoder(refs["synopsis"])}
    computed = {(v, "weekly_cold") for v in weekly_checkpoints} | {(v, "lightfm_holdout") for v in lightfm_variants}
    ablation.run_week(train, score, week=week, label=f"{own['cover_art']}+{own['synopsis']}", own=own, cold=cold,
                      lightfm=lightfm, computed=computed, popularity=popularity_columns(vocabulary))


DATASETS = {"simulator": "simulator", "movielens": "movielens-100k", "movielens-100k": "movielens-100k"}


def two_tower_configs(systems: Sequence[str], training, threads: int) -> dict[str, TwoTowerConfig]:
    """The training settings of every two-tower system named, whichever protocol names it: the platform's
    settings with the run's `--train` overrides, never the library defaults."""
    return {s: TwoTowerConfig(s.split(":", 1)[1], training, threads) for s in systems if s.startswith("two_tower:")}


def _names(text: str | None, default: Sequence[str]) -> list[str]:
    if text is None:
        return list(default)
    return [] if text.strip().lower() == "none" else [v for v in text.split(",") if v]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rec_assets.bench.compare",
                                     description=__doc__.split("\n\n")[0],
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
    parser.add_argument("--train", action="append", default=[], metavar="FIELD=VALUE",
                        help="a field of the two-tower training config (model.train.TrainConfig) for every "
                             "retraining of this run, e.g. id_dropout=0.5 (repeatable)")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
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
    try:
        training = PLATFORM_TRAINING.with_overrides(args.train)
    except ValueError as error:
        parser.error(str(error))
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
    oracle = find_oracle_factors(args.oracle_dir, home)
    ablation = None
    if args.encoder_ablation:
        from rec_assets.bench.encoder_ablation import EncoderAblation, parse_encoders

        try:
            ablated = parse_encoders(args.ablation_encoders)
        except ValueError as error:
            parser.error(str(error))
        ablation = EncoderAblation(ablated, cover_art_cache=artifacts / "cache" / "cover_art",
                                   training=training, threads=args.threads,
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
            configs: dict[str, Any] = two_tower_configs([*peers, *holdout_peers, *ablation_peers], training,
                                                        args.threads)
            if args.grid != "none":
                tune_train, _, _ = week_inputs(conn, artifacts, tune_week, lengths)
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
                train, score, vocabulary = week_inputs(conn, artifacts, week, lengths)
                encoders.add(encoders_label(artifacts, week))
                recorded = {} if args.no_checkpoints else recorded_training(dagster_home, week, variants)
                paths, seconds, skipped = ({}, {}, []) if args.no_checkpoints else week_checkpoints(
                    artifacts, week, recorded)
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
                    frame = pd.concat([frame, stored_rows(conn, week, computed)], ignore_index=True)
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
                "window_lengths": asdict(lengths), "threads": args.threads, "training_overrides": args.train,
                "configs": {p: config_dict(c) for p, c in configs.items()},
                "seconds": round(time.perf_counter() - started, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(
        {"settings": settings, "tuning": tuning, "weeks": week_info,
         "results": nan_to_none(results.to_dict(orient="records")),
         "lightfm_holdout": {"splits": lightfm_info,
                             "per_seed": nan_to_none(lightfm_means.to_dict(orient="records"))
                             if lightfm_means is not None else []},
         "pooled": records, "comparisons": compared, "paper_findings": findings, "attention_means": last_attention,
         "encoder_ablation": {k_: v for k_, v in ablation_part.items() if k_ != "markdown"} or None},
        indent=1, default=json_default) + "\n")
    # every per-user value behind the intervals, so two runs (e.g. two training options) can be paired later
    long.to_parquet(out / "per_user.parquet", index=False)
    (out / "compare.md").write_text(results_markdown(results, tuning, settings, args.k) + "\n"
                                    + pooled_markdown(records, compared, encoder_label)
                                    + "\n" + findings_markdown(findings, dataset)
                                    + ("\n" + ablation_part["markdown"] if ablation_part.get("markdown") else ""))
    cold_start = Path(args.cold_start) if args.cold_start else out / "cold_start.json"
    write_cold_start(cold_start, dataset, records)
    print(f"wrote {out / 'compare.md'}, {out / 'compare.json'} and {cold_start} ({len(records)} {dataset} records)"
          f" in {time.perf_counter() - started:.0f} s")
    return 0

