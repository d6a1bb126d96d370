"""How much of the simulator's hidden title factors a scoring week's features hold (the metadata ceiling's diagnostic).

R² of a ridge read of each metadata part of the cold titles' factors from the towers' features, fitted on the week's
other titles, and of the synopsis part from each synopsis encoder alone. A low R² bounds what any tower of those
features can recover. ``python -m rec_assets.bench.feature_read [--home H] [--week W]``; README, "How much of the
metadata ceiling the features carry".
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import duckdb
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import r2_score

from rec_assets.bench.compare.inputs import find_oracle_factors, materialised_weeks, week_inputs
from rec_assets.evaluation.oracle import METADATA_PARTS, ridge_read, title_feature_matrix
from rec_assets.features.synopsis import SYNOPSIS_ENCODERS, SynopsisConfig, embed_synopses
from rec_assets.split.windows import WindowLengths

TFIDF = "tfidf_words"  # the synopsis as a TF-IDF bag of words: what a word-level read could recover


def synopsis_matrix(encoder: str, catalogue) -> np.ndarray:
    if encoder == TFIDF:
        return TfidfVectorizer().fit_transform(catalogue["synopsis"].fillna("")).toarray()
    embedded = embed_synopses(catalogue, SynopsisConfig(encoder=encoder))
    return np.where(embedded.missing[:, None], 0.0, embedded.embeddings)


def feature_read_report(home: Path, week: str, encoders: list[str]) -> dict:
    """{"parts": {part: cold R²}, "synopsis_by_encoder": {encoder: cold R²}, titles and cold-title counts}."""
    factors = find_oracle_factors("", home)
    if factors is None:
        raise SystemExit(f"no simulator oracle file under {home / 'sources'}: this diagnostic needs the simulator")
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        _, score, _ = week_inputs(conn, home / "artifacts", week, WindowLengths())
    items, catalogue = score.items, score.catalogue
    cold = catalogue["is_cold_start"].to_numpy(bool)
    truth = factors.title_latent[np.searchsorted(factors.title_ids, items.title_ids)]
    features = title_feature_matrix(items, ~cold)

    def cold_r2(matrix: np.ndarray, part: str) -> float:
        target = truth[:, slice(*factors.parts[part])]
        read = ridge_read(matrix, target, ~cold)
        return round(float(r2_score(target[cold], read[cold], multioutput="variance_weighted")), 3)

    return {"scoring_week": week, "titles": int(items.n_titles), "cold_titles": int(cold.sum()),
            "parts": {part: cold_r2(features, part) for part in METADATA_PARTS},
            "synopsis_by_encoder": {e: cold_r2(synopsis_matrix(e, catalogue), "synopsis") for e in encoders}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("REC_HOME", ".rec_home"), help="a materialised REC_HOME")
    parser.add_argument("--week", default="", help="scoring week (default: the latest with feature artifacts)")
    parser.add_argument("--encoders", default=",".join([*SYNOPSIS_ENCODERS, TFIDF]),
                        help=f"synopsis encoders to read the synopsis part from ({', '.join(SYNOPSIS_ENCODERS)}, "
                             f"{TFIDF})")
    args = parser.parse_args(argv)
    home = Path(args.home).resolve()
    weeks = materialised_weeks(home / "artifacts")
    week = args.week or (weeks[-1] if weeks else "")
    if week not in weeks:
        raise SystemExit(f"week {week or '(none)'} has no feature artifacts under {home}: run make run first")
    print(json.dumps(feature_read_report(home, week, [e for e in args.encoders.split(",") if e]), indent=2))


if __name__ == "__main__":
    main()
