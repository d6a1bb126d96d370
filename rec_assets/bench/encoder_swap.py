"""A whole tower on another synopsis encoder's vectors, paired against the week's own (what changing the default buys).

``make compare --encoder-ablation`` swaps encoders under the single-modality variants only; this swaps the synopsis
matrix under any variant (attention w/o ID, attention w/ ID), trains both with the platform's training on the week's
X -> Y, and pairs them over users on Y' (warm and cold, movies and TV apart). Choose on a validation week, report on
another. ``python -m rec_assets.bench.encoder_swap --week W [--encoder minilm] [--variants a,b] [--out F]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import duckdb
import pandas as pd

from rec_assets.bench.compare.inputs import encoders_label, week_inputs
from rec_assets.bench.compare.protocols import PLATFORM_TRAINING, compare_week
from rec_assets.bench.encoder_ablation import reembed, swapped
from rec_assets.evaluation.intervals import paired_difference
from rec_assets.features.synopsis import SYNOPSIS_ENCODERS
from rec_assets.peers.adapters import TwoTowerConfig
from rec_assets.split.windows import WindowLengths

SEGMENTS = [(candidate_set, category) for candidate_set in ("warm", "cold") for category in ("movie", "tv")]


def per_user(train, score, variant: str, training, threads: int, k: int) -> pd.DataFrame:
    """Per-user p@k and r@k of ``variant`` trained on ``train`` and scored on ``score`` (compare's standard protocol)."""
    peer = f"two_tower:{variant}"
    users: list[pd.DataFrame] = []
    compare_week(train, score, peers=[peer], configs={peer: TwoTowerConfig(variant, training, threads)},
                 protocols=["standard"], k=k, baselines=False, per_user=users)
    frame = pd.concat(users, ignore_index=True)
    return frame[frame["system"] == peer]


def encoder_swap(home: Path, week: str, encoder: str, variants: list[str], *, training=PLATFORM_TRAINING,
                 threads: int = 2, k: int = 6, n_resamples: int = 2000) -> dict:
    """{"week", "own": the week's encoders label, "encoder", "rows": per (variant, segment, metric): both pooled
    values in %, the difference swapped − own with its 95% paired interval over users, and the verdict}."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        train, score, _ = week_inputs(conn, home / "artifacts", week, WindowLengths())
    vectors, missing, facts = reembed("synopsis", encoder, train.catalogue)
    swapped_weeks = [swapped(w, "synopsis", vectors, missing) for w in (train, score)]
    rows = []
    for variant in variants:
        own = per_user(train, score, variant, training, threads, k)
        other = per_user(*swapped_weeks, variant, training, threads, k)
        for candidate_set, category in SEGMENTS:
            a, b = (f[(f["candidate_set"] == candidate_set) & (f["category"] == category)] for f in (other, own))
            for metric in (f"p@{k}", f"r@{k}"):
                compared = paired_difference(a, b, keys=["user_id"], value=metric, names=(encoder, "own"),
                                             n_resamples=n_resamples)
                d = compared.difference
                rows.append({"variant": variant, "candidate_set": candidate_set, "category": category,
                             "metric": metric, encoder: round(100 * a[metric].mean(), 2),
                             "own": round(100 * b[metric].mean(), 2), "difference": round(100 * d.value, 2),
                             "ci_low": round(100 * d.low, 2), "ci_high": round(100 * d.high, 2),
                             "verdict": compared.verdict, "n_users": d.n_users})
    return {"scoring_week": week, "own": encoders_label(home / "artifacts", week), "encoder": encoder,
            "embedding": facts, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("REC_HOME", ".rec_home"), help="a materialised REC_HOME")
    parser.add_argument("--week", required=True, help="a scoring week with feature artifacts")
    parser.add_argument("--encoder", default="minilm", choices=SYNOPSIS_ENCODERS)
    parser.add_argument("--variants", default="attention_no_id,attention_id")
    parser.add_argument("--epochs", type=int, default=PLATFORM_TRAINING.epochs)
    parser.add_argument("--out", default="", help="also write the JSON here")
    args = parser.parse_args(argv)
    training = dataclasses.replace(PLATFORM_TRAINING, epochs=args.epochs)
    report = encoder_swap(Path(args.home).resolve(), args.week, args.encoder,
                          [v for v in args.variants.split(",") if v], training=training)
    text = json.dumps(report, indent=1, default=str)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
